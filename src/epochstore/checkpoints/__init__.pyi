"""Type stub of :mod:`epochstore.checkpoints`: its public names, loaded lazily."""

from .fileformat import Digest
from .layout import Checkpoint
from .manager import CheckpointManager
from .manifest import BestState, CheckpointRecord
from .retention import (
    AnyOf,
    KeepAll,
    KeepBest,
    KeepEpochs,
    KeepEvery,
    KeepLast,
    RetentionPolicy,
)
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
    "RetentionPolicy",
    "VerificationProblem",
    "VerificationReport",
    "capture_rng_state",
    "restore_rng_state",
]
