"""``manifest.json``: the commit record of a checkpoint directory.

A checkpoint is committed when, and only when, the manifest lists it (with its
:class:`~.fileformat.Digest`, metrics and provenance). Its random ``store_id`` is written into
every file it commits: a file with another id was not written by this manager and is never
overwritten or deleted. See "The manifest" in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal

from epochstore.checkpoints.fileformat import Digest
from epochstore.checkpoints.state import decode_tree, encode_tree, normalise_metrics
from epochstore.errors import CheckpointFormatError
from epochstore.naming import checkpoint_name, validate_epoch
from epochstore.provenance import utc_now

__all__ = ["MANIFEST_FORMAT", "MANIFEST_NAME", "BestState", "CheckpointRecord", "Manifest", "Mode"]

MANIFEST_NAME: Final = "manifest.json"
MANIFEST_FORMAT: Final = 1
_KIND: Final = "epochstore.checkpoints.manifest"

Mode = Literal["min", "max"]


@dataclass(frozen=True)
class CheckpointRecord:
    """What the manifest knows about one committed checkpoint.

    Attributes
    ----------
    epoch
        The training epoch.
    file
        File name in the checkpoint directory (``checkpoint_epoch_00100.safetensors``).
    digest
        Size and sha256 values of the file.
    metrics
        Metrics passed to ``save`` (floats; NaN and inf are kept).
    metadata
        Provenance: timestamp, git hash and dirty flag, library versions.
    """

    epoch: int
    file: str
    digest: Digest
    metrics: Mapping[str, float] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """File size in bytes."""
        return self.digest.size

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file."""
        return self.digest.sha256

    def to_json(self) -> dict[str, Any]:
        """Return the record's JSON object."""
        return {
            "epoch": self.epoch,
            "file": self.file,
            **self.digest.to_json(),
            "metrics": encode_tree(dict(self.metrics), "metrics", None),
            "metadata": encode_tree(dict(self.metadata), "metadata", None),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> CheckpointRecord:
        """Build a record from :meth:`to_json` output, validating it."""
        if not isinstance(data, dict):
            raise CheckpointFormatError(f"{where}: a checkpoint record must be a JSON object")
        try:
            epoch = validate_epoch(data.get("epoch"))
            metrics = normalise_metrics(decode_tree(data.get("metrics", {})))
        except (TypeError, ValueError) as exc:
            raise CheckpointFormatError(f"{where}: {exc}") from None
        name = checkpoint_name(epoch)
        if data.get("file") != name:
            raise CheckpointFormatError(
                f"{where}: the file of epoch {epoch} must be {name!r}, got {data.get('file')!r}"
            )
        metadata = decode_tree(data.get("metadata", {}))
        if not isinstance(metadata, dict):
            raise CheckpointFormatError(f"{where}: metadata must be a JSON object")
        return cls(
            epoch=epoch,
            file=name,
            digest=Digest.from_json(data, where),
            metrics=metrics,
            metadata=metadata,
        )


@dataclass(frozen=True)
class BestState:
    """The best committed checkpoint by the manager's metric."""

    metric: str
    mode: Mode
    epoch: int
    value: float


@dataclass(frozen=True)
class Manifest:
    """An immutable snapshot of ``manifest.json``; changes return a new manifest."""

    store_id: str
    checkpoints: tuple[CheckpointRecord, ...] = ()
    best: BestState | None = None
    retired: tuple[str, ...] = ()

    @classmethod
    def new(cls) -> Manifest:
        """Return an empty manifest with a fresh ``store_id``."""
        return cls(store_id=uuid.uuid4().hex)

    def get(self, epoch: int) -> CheckpointRecord | None:
        """Return the record of ``epoch``, or ``None`` if it is not committed."""
        return next((record for record in self.checkpoints if record.epoch == epoch), None)

    def epochs(self) -> list[int]:
        """Return the committed epochs, sorted."""
        return [record.epoch for record in self.checkpoints]

    def with_record(self, record: CheckpointRecord) -> Manifest:
        """Return a manifest that commits ``record`` (replacing a record of the same epoch)."""
        records = [r for r in self.checkpoints if r.epoch != record.epoch] + [record]
        return replace(
            self,
            checkpoints=tuple(sorted(records, key=lambda r: r.epoch)),
            retired=tuple(name for name in self.retired if name != record.file),
        )

    def without(self, epochs: set[int]) -> Manifest:
        """Return a manifest where ``epochs`` are no longer committed and their files retired."""
        gone = tuple(r.file for r in self.checkpoints if r.epoch in epochs)
        return replace(
            self,
            checkpoints=tuple(r for r in self.checkpoints if r.epoch not in epochs),
            retired=tuple(sorted({*self.retired, *gone})),
        )

    def to_bytes(self) -> bytes:
        """Return the JSON text of ``manifest.json``."""
        best = self.best and {
            **asdict(self.best), "value": encode_tree(self.best.value, "best.value", None)
        }
        document = {
            "format": MANIFEST_FORMAT,
            "kind": _KIND,
            "store_id": self.store_id,
            "updated": utc_now(),
            "best": best,
            "retired": list(self.retired),
            "checkpoints": [record.to_json() for record in self.checkpoints],
        }
        return json.dumps(document, indent=1, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Manifest:
        """Parse and validate ``manifest.json``.

        Raises
        ------
        CheckpointFormatError
            If the text is not a valid manifest of a known format version.
        """
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CheckpointFormatError(
                f"{path} is not valid JSON ({exc}); restore it from a backup or move the "
                f"directory aside (its checkpoint files are intact but uncommitted without it)"
            ) from None
        if not isinstance(document, dict) or document.get("kind") != _KIND:
            raise CheckpointFormatError(
                f"{path} is not an epochstore checkpoint manifest (no kind {_KIND!r}); this "
                f"directory holds something else: give CheckpointManager a directory of its own, "
                f"or move that file away"
            )
        if document.get("format") != MANIFEST_FORMAT:
            raise CheckpointFormatError(
                f"{path} has manifest format {document.get('format')!r}; this epochstore "
                f"reads format {MANIFEST_FORMAT}: upgrade epochstore"
            )
        store_id, records, retired = (
            document.get("store_id"),
            document.get("checkpoints"),
            document.get("retired", []),
        )
        if not isinstance(store_id, str) or not store_id:
            raise _damaged(path, "'store_id' must be a non-empty string")
        if not isinstance(records, list):
            raise _damaged(path, "'checkpoints' must be a list")
        if not isinstance(retired, list) or not all(isinstance(n, str) for n in retired):
            raise _damaged(path, "'retired' must be a list of file names")
        try:
            parsed = [CheckpointRecord.from_json(r, f"{path}, checkpoint #{i}")
                      for i, r in enumerate(records)]
        except CheckpointFormatError as exc:
            raise CheckpointFormatError(f"{exc}; restore {path} from a backup") from None
        checkpoints = tuple(sorted(parsed, key=lambda r: r.epoch))
        counts = Counter(r.epoch for r in checkpoints)
        twice = sorted(epoch for epoch, count in counts.items() if count > 1)
        if twice:
            raise CheckpointFormatError(
                f"{path}: an epoch is listed twice (epochs {twice}); the manifest was edited by "
                f"hand or damaged: keep one record per epoch, or restore it from a backup"
            )
        return cls(
            store_id=store_id,
            checkpoints=checkpoints,
            best=_parse_best(document.get("best"), path),
            retired=tuple(retired),
        )


def _damaged(path: str, problem: str) -> CheckpointFormatError:
    return CheckpointFormatError(f"{path}: {problem}; restore it from a backup")


def _parse_best(data: Any, path: str) -> BestState | None:
    if data is None:
        return None
    try:
        value = decode_tree(data["value"])
        best = BestState(
            metric=str(data["metric"]),
            mode=data["mode"],
            epoch=int(data["epoch"]),
            value=float(value),
        )
    except (KeyError, TypeError, ValueError):
        raise _damaged(path, "'best' is not a valid best record") from None
    if best.mode not in ("min", "max"):
        raise _damaged(path, "'best.mode' must be 'min' or 'max'")
    return best
