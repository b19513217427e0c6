"""The error hierarchy of epochstore: one place for every error and warning.

Every error derives from :class:`EpochstoreError` *and* from the built-in exception it means,
so ``except KeyError`` or ``except FileNotFoundError`` in user code keeps working. Messages say
what went wrong, where (store, analyzer, epoch, file) and how to fix it.

The module defines nothing but these classes, so it needs no ``__all__``; the public list is
``epochstore/__init__.pyi`` (``tests/test_errors.py`` checks it names every class here).
"""

class EpochstoreError(Exception):
    """Base class of every error raised by epochstore."""

    def __str__(self) -> str:
        # KeyError quotes its message; every epochstore error prints its message as written.
        if len(self.args) == 1 and isinstance(self.args[0], str):
            return self.args[0]
        return super().__str__()


class EpochstoreWarning(UserWarning):
    """Warning issued by epochstore (e.g. a checkpoint skipped because it failed its checksum)."""


# --- names and input ---------------------------------------------------------------------------


class InvalidNameError(EpochstoreError, ValueError):
    """An analyzer, field, family or variant name breaks the naming rule ``[a-z][a-z0-9_]*``."""


class InvalidEpochError(EpochstoreError, ValueError):
    """An epoch is not an integer in 0..99999."""


class SchemaMismatchError(EpochstoreError, ValueError):
    """An epoch's field does not match the shape, dtype or dims the analyzer recorded."""


class InvalidVersionError(EpochstoreError, ValueError):
    """A version string is not a semantic version ``MAJOR.MINOR.PATCH``."""


class InvalidCodecError(EpochstoreError, ValueError):
    """A codec name is not one epochstore knows (see ``Codec.parse``)."""


# --- artifact store ----------------------------------------------------------------------------


class AnalyzerNotFoundError(EpochstoreError, KeyError):
    """The store has no group for this analyzer."""


class EpochNotFoundError(EpochstoreError, KeyError):
    """The analyzer has no committed node for this epoch."""


class EpochExistsError(EpochstoreError, FileExistsError):
    """The epoch already exists and ``overwrite`` was not requested."""


class EpochChangedError(EpochstoreError, RuntimeError):
    """The epoch was overwritten or deleted while it was being read; load it again."""


class ReadOnlyError(EpochstoreError, PermissionError):
    """A write was attempted through a read-only object (e.g. an ``ArtifactLoader``)."""


class UnsupportedArrayError(EpochstoreError, TypeError):
    """An output cannot be stored: object/string dtype, not array-like, or absurd shape."""


class InvalidLocationError(EpochstoreError, ValueError):
    """A store location or artifact path points outside the run (``..``, absolute paths), or
    a local path was given storage options (they are for URLs)."""


class RunNotFoundError(EpochstoreError, FileNotFoundError):
    """The run directory does not exist."""


class StorageUnreachableError(EpochstoreError, OSError):
    """A URL's storage cannot be reached: no such endpoint, refused credentials, or storage
    options its filesystem does not take (see :func:`epochstore.location.reaching`)."""


class InvalidVariantError(EpochstoreError, ValueError):
    """A run's ``variant.json`` is not valid JSON or lacks a valid family or params."""


class StoreFormatError(EpochstoreError, ValueError):
    """The store's ``epochstore_format`` is missing, unknown or newer than this library."""


class StoreWriteError(EpochstoreError, OSError):
    """Writing to the store failed (disk full, I/O error); nothing partial became visible."""


class CorruptArtifactError(EpochstoreError, OSError):
    """An artifact's chunk or metadata failed its checksum or could not be decoded."""


# --- checkpoints ---------------------------------------------------------------------------------


class CheckpointNotFoundError(EpochstoreError, FileNotFoundError):
    """No committed checkpoint matches the request."""


class CheckpointFormatError(EpochstoreError, ValueError):
    """A file named like a checkpoint is not a valid safetensors checkpoint (never unpickled)."""


class CorruptCheckpointError(EpochstoreError, OSError):
    """A checkpoint file does not match the size or sha256 its manifest recorded."""


class PromotionError(EpochstoreError, ValueError):
    """A promotion breaks the raw -> validated -> production rules."""


# --- families and pipeline ---------------------------------------------------------------------


class FamilyNotFoundError(EpochstoreError, KeyError):
    """No model family is registered under this name."""

