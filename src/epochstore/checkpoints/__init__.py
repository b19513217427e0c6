"""Training checkpoints in safetensors files: crash-safe saves, retention, verified loading.

>>> from epochstore.checkpoints import CheckpointManager   # doctest: +SKIP
>>> manager = CheckpointManager("runs/p113/checkpoints", max_checkpoints=5)  # doctest: +SKIP

See ``docs/checkpoints.md`` for the guide, the file format and the crash-safety protocol.
"""

from __future__ import annotations

from epochstore.checkpoints.fileformat import Digest
from epochstore.checkpoints.layout import Checkpoint
from epochstore.checkpoints.manager import CheckpointManager
from epochstore.checkpoints.manifest import BestState, CheckpointRecord
from epochstore.checkpoints.promotion import ProductionRecord, VersionRecord
from epochstore.checkpoints.retention import (
    AnyOf,
    KeepAll,
    KeepBest,
    KeepEpochs,
    KeepEvery,
    KeepLast,
    RetentionPolicy,
)
from epochstore.checkpoints.semver import Version
from epochstore.checkpoints.state import capture_rng_state, restore_rng_state
from epochstore.checkpoints.verification import VerificationProblem, VerificationReport

__all__ = [
    "AnyOf",
    "BestState",
    "Checkpoint",
    "CheckpointManager",
    "CheckpointRecord",
    "Digest",
    "KeepAll",
    "KeepBest",
    "KeepEpochs",
    "KeepEvery",
    "KeepLast",
    "ProductionRecord",
    "RetentionPolicy",
    "VerificationProblem",
    "VerificationReport",
    "Version",
    "VersionRecord",
    "capture_rng_state",
    "restore_rng_state",
]
