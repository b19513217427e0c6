"""The promotion registry: raw checkpoint -> validated version -> production.

It sits on the checkpoint file format (verified copies of checkpoint files, records that
carry their sha256) and keeps its own files beside the checkpoint directory. Users reach it
through :class:`~epochstore.CheckpointManager`, which inherits :class:`Promotions`
(``promote``, ``versions``, ``load_version``, ``load_production``, ...); :class:`Registry` is the
engine behind those methods, and :func:`parse_version` the one parser of version strings. See
``docs/checkpoints.md``.
"""

from epochstore.registry._promotions import Promotions
from epochstore.registry._registry import PromotionTarget, Registry
from epochstore.registry.records import ProductionRecord, Version, VersionRecord, parse_version

__all__ = [
    "ProductionRecord",
    "PromotionTarget",
    "Promotions",
    "Registry",
    "Version",
    "VersionRecord",
    "parse_version",
]
