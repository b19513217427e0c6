"""Type stub of :mod:`epochstore.checkpoints`: its public names, loaded lazily."""

from .fileformat import Digest
from .layout import Checkpoint
from .manager import CheckpointManager
from .manifest import BestState, CheckpointRecord
from .promotion import ProductionRecord, VersionRecord
from .retention import (
    AnyOf,
    KeepAll,
    KeepBest,
    KeepEpochs,
    KeepEvery,
    KeepLast,
    RetentionPolicy,
)
from .semver import Version
from .state import capture_rng_state, restore_rng_state
from .verification import VerificationProblem, VerificationReport

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
