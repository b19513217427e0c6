"""Type stub of the public API: the one list of what ``epochstore`` exports (loaded lazily).

``lazy_loader`` builds ``__all__`` from these imports; ``X as X`` marks each as a re-export for
type checkers, so no second list is needed.
"""

# ruff: noqa: I001 - one import per module keeps the list readable; isort would split "X as X"

from ._version import __version__ as __version__
from .checkpoints import Checkpoint as Checkpoint
from .checkpoints import CheckpointManager as CheckpointManager
from .checkpoints import VerificationReport as VerificationReport
from .errors import (
    AnalyzerNotFoundError as AnalyzerNotFoundError,
    CheckpointFormatError as CheckpointFormatError,
    CheckpointNotFoundError as CheckpointNotFoundError,
    CorruptArtifactError as CorruptArtifactError,
    CorruptCheckpointError as CorruptCheckpointError,
    EpochChangedError as EpochChangedError,
    EpochExistsError as EpochExistsError,
    EpochNotFoundError as EpochNotFoundError,
    EpochstoreError as EpochstoreError,
    EpochstoreWarning as EpochstoreWarning,
    FamilyNotFoundError as FamilyNotFoundError,
    InvalidCodecError as InvalidCodecError,
    InvalidEpochError as InvalidEpochError,
    InvalidLocationError as InvalidLocationError,
    InvalidNameError as InvalidNameError,
    InvalidVariantError as InvalidVariantError,
    InvalidVersionError as InvalidVersionError,
    PromotionError as PromotionError,
    ReadOnlyError as ReadOnlyError,
    RunNotFoundError as RunNotFoundError,
    SchemaMismatchError as SchemaMismatchError,
    StorageUnreachableError as StorageUnreachableError,
    StoreFormatError as StoreFormatError,
    StoreWriteError as StoreWriteError,
    UnsupportedArrayError as UnsupportedArrayError,
)
from .families.torch_model import record_model as record_model
from .pipeline import AnalysisPipeline as AnalysisPipeline
from .store import ArtifactLoader as ArtifactLoader
from .store import ArtifactStore as ArtifactStore
from .store import Codec as Codec
from .summary import peer_series as peer_series
from .summary import variant_table as variant_table
from .sweeps import sweep as sweep
