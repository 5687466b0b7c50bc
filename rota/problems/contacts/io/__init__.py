"""Contact-scheduling files: rota JSON (:mod:`.json`) and SatNet weeks (:mod:`.satnet`)."""

from rota.problems.contacts.io import json, satnet

__all__ = ["json", "satnet"]
