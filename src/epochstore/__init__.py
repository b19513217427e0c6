"""epochstore: store and analyse what a model training run produces, one epoch at a time."""

from __future__ import annotations

from epochstore._version import __version__
from epochstore.checkpoints import Checkpoint, CheckpointManager, VerificationReport
from epochstore.errors import (
    AnalyzerNotFoundError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptArtifactError,
    CorruptCheckpointError,
    EpochChangedError,
    EpochExistsError,
    EpochNotFoundError,
    EpochstoreError,
    EpochstoreWarning,
    FamilyNotFoundError,
    InvalidCodecError,
    InvalidEpochError,
    InvalidLocationError,
    InvalidNameError,
    InvalidVersionError,
    PromotionError,
    ReadOnlyError,
    RunNotFoundError,
    SchemaMismatchError,
    StoreFormatError,
    StoreWriteError,
    UnsupportedArrayError,
)
from epochstore.pipeline import AnalysisPipeline
from epochstore.store import ArtifactLoader, ArtifactStore, Codec

__all__ = [
    "AnalysisPipeline",
    "AnalyzerNotFoundError",
    "ArtifactLoader",
    "ArtifactStore",
    "Checkpoint",
    "CheckpointFormatError",
    "CheckpointManager",
    "CheckpointNotFoundError",
    "Codec",
    "CorruptArtifactError",
    "CorruptCheckpointError",
    "EpochChangedError",
    "EpochExistsError",
    "EpochNotFoundError",
    "EpochstoreError",
    "EpochstoreWarning",
    "FamilyNotFoundError",
    "InvalidCodecError",
    "InvalidEpochError",
    "InvalidLocationError",
    "InvalidNameError",
    "InvalidVersionError",
    "PromotionError",
    "ReadOnlyError",
    "RunNotFoundError",
    "SchemaMismatchError",
    "StoreFormatError",
    "StoreWriteError",
    "UnsupportedArrayError",
    "VerificationReport",
    "__version__",
]
