"""Neural policies and their training; see :mod:`rota.models.rrnco` and :mod:`rota.models.train`."""
