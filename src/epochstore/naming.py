"""Names: the one place where epoch and checkpoint names are built, parsed and validated.

Every other module asks this one. Names on disk are part of the on-disk format
(``docs/format.md``); changing them is a format change.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import Final

from epochstore.errors import InvalidEpochError, InvalidNameError

__all__ = [
    "CHECKPOINT_SUFFIX",
    "EPOCH_PREFIX",
    "MAX_EPOCH",
    "NAME_PATTERN",
    "TMP_PREFIX",
    "checkpoint_name",
    "describe_epochs",
    "epoch_name",
    "generation_name",
    "is_hidden",
    "parse_checkpoint_name",
    "parse_epoch_name",
    "parse_generation_name",
    "tmp_epoch_name",
    "validate_epoch",
    "validate_name",
]

MAX_EPOCH: Final = 99_999
EPOCH_PREFIX: Final = "epoch_"
CHECKPOINT_PREFIX: Final = "checkpoint_epoch_"
CHECKPOINT_SUFFIX: Final = ".safetensors"
TMP_PREFIX: Final = ".tmp-"
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*")
_MAX_NAME_LENGTH: Final = 128

_EPOCH_RE: Final = re.compile(r"epoch_(\d{5})")
_GENERATION_RE: Final = re.compile(r"epoch_(\d{5})\.g([1-9]\d{0,8})")
_CHECKPOINT_RE: Final = re.compile(r"checkpoint_epoch_(\d{5})\.safetensors")


def validate_epoch(epoch: object) -> int:
    """Return ``epoch`` as an ``int`` if it is a valid epoch number (0..99999).

    Raises
    ------
    InvalidEpochError
        If ``epoch`` is not an integer (``bool`` is refused too) or is outside 0..99999.
        It subclasses ``ValueError``.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
        raise InvalidEpochError(
            f"epoch must be an integer in 0..{MAX_EPOCH}, got {epoch!r} "
            f"of type {type(epoch).__name__}"
        )
    value = int(epoch)
    if not 0 <= value <= MAX_EPOCH:
        raise InvalidEpochError(
            f"epoch {value} is out of range: epochs are 0..{MAX_EPOCH} "
            f"(the on-disk name has five digits, e.g. epoch_00042)"
        )
    return value


def validate_name(name: object, kind: str = "name") -> str:
    """Return ``name`` if it is a valid analyzer or field name.

    Names must match ``[a-z][a-z0-9_]*`` (at most 128 characters): lower-case ASCII letters,
    digits and underscores, starting with a letter. This rules out path traversal (``..``,
    ``/``), hidden names (``.x``) and names that differ only by case on case-insensitive
    filesystems.

    Parameters
    ----------
    name
        The name to check.
    kind
        What the name names (``"analyzer name"``, ``"field name"``), used in the message.

    Raises
    ------
    InvalidNameError
        If ``name`` is not a ``str`` or does not match the rule. It subclasses ``ValueError``.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} must be a str, got {type(name).__name__}: {name!r}")
    if len(name) > _MAX_NAME_LENGTH or NAME_PATTERN.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid {kind} {name!r}: names must match [a-z][a-z0-9_]* "
            f"(lower-case letters, digits and '_', starting with a letter, at most "
            f"{_MAX_NAME_LENGTH} characters), e.g. 'neuron_activations'"
        )
    return name


def epoch_name(epoch: int) -> str:
    """Return the node name of ``epoch``: ``epoch_00042`` for 42.

    Examples
    --------
    >>> epoch_name(42)
    'epoch_00042'
    """
    return f"{EPOCH_PREFIX}{validate_epoch(epoch):05d}"


def parse_epoch_name(name: str) -> int | None:
    """Return the epoch of a committed epoch node name, or ``None`` for any other name.

    Temporary names (``.tmp-epoch_00042-<uuid>``) and metadata files are not epochs.

    Examples
    --------
    >>> parse_epoch_name("epoch_00042")
    42
    >>> parse_epoch_name(".tmp-epoch_00042-1f2e") is None
    True
    """
    match = _EPOCH_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def generation_name(epoch: int, generation: int) -> str:
    """Return the node name of generation ``generation`` of an epoch's data.

    Generation 0 is the epoch node itself; an overwrite on an object store writes the new data
    in the next generation, ``epoch_00042.g1``, beside it (``docs/format.md``).

    Examples
    --------
    >>> generation_name(42, 0), generation_name(42, 3)
    ('epoch_00042', 'epoch_00042.g3')
    """
    if generation == 0:
        return epoch_name(epoch)
    return f"{epoch_name(epoch)}.g{int(generation)}"


def parse_generation_name(name: str) -> tuple[int, int] | None:
    """Return ``(epoch, generation)`` of a generation node name (1 or more), else ``None``.

    Examples
    --------
    >>> parse_generation_name("epoch_00042.g3")
    (42, 3)
    >>> parse_generation_name("epoch_00042") is None
    True
    """
    match = _GENERATION_RE.fullmatch(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def tmp_epoch_name(epoch: int, token: str) -> str:
    """Return the temporary node name of an epoch being written: ``.tmp-epoch_00042-<token>``."""
    return f"{TMP_PREFIX}{epoch_name(epoch)}-{token}"


def is_hidden(name: str) -> bool:
    """Return whether a node name is hidden from readers (temporary or private: leading dot)."""
    return name.startswith(".")


def checkpoint_name(epoch: int) -> str:
    """Return the file name of the checkpoint of ``epoch``.

    Examples
    --------
    >>> checkpoint_name(100)
    'checkpoint_epoch_00100.safetensors'
    """
    return f"{CHECKPOINT_PREFIX}{validate_epoch(epoch):05d}{CHECKPOINT_SUFFIX}"


def parse_checkpoint_name(name: str) -> int | None:
    """Return the epoch of a checkpoint file name, or ``None`` for any other name.

    Examples
    --------
    >>> parse_checkpoint_name("checkpoint_epoch_00100.safetensors")
    100
    >>> parse_checkpoint_name("checkpoint_epoch_100.safetensors") is None
    True
    """
    match = _CHECKPOINT_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def describe_epochs(epochs: Sequence[int]) -> str:
    """Return a short list of sorted epochs for messages (``"1, 2, ..., 95 (95 epochs)"``)."""
    if not epochs:
        return "none"
    if len(epochs) <= 6:
        return ", ".join(map(str, epochs))
    return f"{epochs[0]}, {epochs[1]}, ..., {epochs[-1]} ({len(epochs)} epochs)"
