"""Promotion: raw checkpoint -> validated version -> production, with immutable records.

Layout under the registry directory (by default the run directory, the parent of
``checkpoints/``)::

    validated/v1.0.0.safetensors   a verified byte copy of the source checkpoint (read-only)
    validated/v1.0.0.json          its immutable record: source epoch, sha256, checks, when, git
    production/model.safetensors   a verified copy of the production version
    production/model.json          which version it is (the current pointer)
    production/history.json        append-only list of which version became production when

A version exists once its ``.json`` record exists (written last). Every copy is verified
against the sha256 recorded when the checkpoint was written: a corrupt source is refused.
Re-running an interrupted promotion to production completes it without duplicating history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from epochstore._version import __version__
from epochstore.checkpoints.fileformat import Digest
from epochstore.checkpoints.layout import read_store_id
from epochstore.checkpoints.provenance import git_info, utc_now
from epochstore.checkpoints.semver import Version
from epochstore.checkpoints.state import decode_tree, encode_tree
from epochstore.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    PromotionError,
)

if TYPE_CHECKING:
    from epochstore.checkpoints.fs import FileSystem
    from epochstore.checkpoints.manifest import CheckpointRecord

__all__ = [
    "PRODUCTION_DIR",
    "VALIDATED_DIR",
    "ProductionRecord",
    "Registry",
    "VersionRecord",
    "check_file",
    "copy_verified",
]

VALIDATED_DIR: Final = "validated"
PRODUCTION_DIR: Final = "production"
PRODUCTION_FILE: Final = "model.safetensors"
PRODUCTION_RECORD: Final = "model.json"
HISTORY_FILE: Final = "history.json"
_CHUNK: Final = 8 << 20
_RECORD_FORMAT: Final = 1


@dataclass(frozen=True)
class VersionRecord:
    """The immutable record of a validated version.

    Attributes
    ----------
    version
        The semantic version.
    source_epoch, source_file
        The checkpoint it was promoted from.
    digest
        Size and sha256 values of the file (equal to the source's).
    checks
        The checks that passed, as given to ``promote``.
    metrics
        The source checkpoint's metrics.
    promoted_at
        UTC ISO-8601 time of the promotion.
    git_hash, git_dirty
        The code the promoting process ran (``None`` outside a git checkout).
    store_id
        Id of the checkpoint manifest the source came from.
    """

    version: str
    source_epoch: int
    source_file: str
    digest: Digest
    checks: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    promoted_at: str = ""
    git_hash: str | None = None
    git_dirty: bool | None = None
    epochstore_version: str = __version__
    store_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of the record."""
        return {
            "format": _RECORD_FORMAT,
            "kind": "epochstore.validated",
            "version": self.version,
            "source_epoch": self.source_epoch,
            "source_file": self.source_file,
            **self.digest.to_json(),
            "checks": encode_tree(dict(self.checks), "checks", None),
            "metrics": encode_tree(dict(self.metrics), "metrics", None),
            "promoted_at": self.promoted_at,
            "git_hash": self.git_hash,
            "git_dirty": self.git_dirty,
            "epochstore_version": self.epochstore_version,
            "store_id": self.store_id,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> VersionRecord:
        """Parse and validate a record."""
        if not isinstance(data, dict) or data.get("kind") != "epochstore.validated":
            raise CheckpointFormatError(f"{where} is not an epochstore version record")
        try:
            return cls(
                version=str(Version.parse(data["version"])),
                source_epoch=int(data["source_epoch"]),
                source_file=str(data["source_file"]),
                digest=Digest.from_json(data, where),
                checks=decode_tree(data.get("checks", {})),
                metrics=decode_tree(data.get("metrics", {})),
                promoted_at=str(data.get("promoted_at", "")),
                git_hash=data.get("git_hash"),
                git_dirty=data.get("git_dirty"),
                epochstore_version=str(data.get("epochstore_version", "unknown")),
                store_id=str(data.get("store_id", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointFormatError(f"{where}: invalid version record ({exc})") from None


@dataclass(frozen=True)
class ProductionRecord:
    """Which version is in production, since when, and what it replaced."""

    version: str
    source_epoch: int
    digest: Digest
    promoted_at: str
    previous_version: str | None = None
    git_hash: str | None = None
    git_dirty: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of the record (also the shape of a history entry)."""
        return {
            "format": _RECORD_FORMAT,
            "kind": "epochstore.production",
            "version": self.version,
            "source_epoch": self.source_epoch,
            **self.digest.to_json(),
            "promoted_at": self.promoted_at,
            "previous_version": self.previous_version,
            "git_hash": self.git_hash,
            "git_dirty": self.git_dirty,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ProductionRecord:
        """Parse and validate a record."""
        if not isinstance(data, dict) or data.get("kind") != "epochstore.production":
            raise CheckpointFormatError(f"{where} is not an epochstore production record")
        try:
            return cls(
                version=str(Version.parse(data["version"])),
                source_epoch=int(data["source_epoch"]),
                digest=Digest.from_json(data, where),
                promoted_at=str(data["promoted_at"]),
                previous_version=data.get("previous_version"),
                git_hash=data.get("git_hash"),
                git_dirty=data.get("git_dirty"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointFormatError(f"{where}: invalid production record ({exc})") from None


def _read_json(fs: FileSystem, path: str) -> Any:
    try:
        return json.loads(fs.read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointFormatError(f"{path} is not valid JSON ({exc})") from None


def _dumps(document: Any) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True, allow_nan=False).encode()


def copy_verified(fs: FileSystem, source: str, target: str, digest: Digest) -> None:
    """Copy ``source`` to ``target`` atomically, checking the bytes against ``digest``.

    Raises
    ------
    CorruptCheckpointError
        If the copied bytes do not match; ``target`` is then left unchanged.
    """
    file_hash = hashlib.sha256()
    size = 0
    with fs.open_read(source) as reader, fs.atomic_write(target) as writer:
        while chunk := reader.read(_CHUNK):
            file_hash.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        if size != digest.size or file_hash.hexdigest() != digest.sha256:
            raise CorruptCheckpointError(
                f"{source} does not match its recorded size and sha256 "
                f"({size} bytes, sha256 {file_hash.hexdigest()}; recorded {digest.size} bytes, "
                f"{digest.sha256}); it is corrupt or was changed"
            )


def check_file(fs: FileSystem, path: str, digest: Digest) -> str | None:
    """Return ``None`` if the file at ``path`` matches ``digest``, else what is wrong."""
    if not fs.exists(path):
        return "file is missing"
    size = fs.size(path)
    if size != digest.size:
        return f"size is {size} bytes, but {digest.size} were recorded (truncated or changed)"
    file_hash = hashlib.sha256()
    with fs.open_read(path) as handle:
        while chunk := handle.read(_CHUNK):
            file_hash.update(chunk)
    if file_hash.hexdigest() != digest.sha256:
        return f"sha256 is {file_hash.hexdigest()}, but {digest.sha256} was recorded (corrupt)"
    return None


class Registry:
    """The validated and production areas next to a checkpoint directory.

    Parameters
    ----------
    fs
        The filesystem of ``root``.
    root
        The registry directory holding ``validated/`` and ``production/``.
    store_id
        Id of the checkpoint manifest whose checkpoints are promoted here.
    """

    def __init__(self, fs: FileSystem, root: str, store_id: str) -> None:
        self.fs = fs
        self.root = root
        self.store_id = store_id
        self.validated_dir = fs.join(root, VALIDATED_DIR)
        self.production_dir = fs.join(root, PRODUCTION_DIR)

    # --- paths and queries ------------------------------------------------------------------

    def file_path(self, version: Version) -> str:
        """Return the path of a validated version's file."""
        return self.fs.join(self.validated_dir, f"v{version}.safetensors")

    def record_path(self, version: Version) -> str:
        """Return the path of a validated version's record."""
        return self.fs.join(self.validated_dir, f"v{version}.json")

    @property
    def production_file(self) -> str:
        """Path of the production copy."""
        return self.fs.join(self.production_dir, PRODUCTION_FILE)

    @property
    def production_record_path(self) -> str:
        """Path of the production record."""
        return self.fs.join(self.production_dir, PRODUCTION_RECORD)

    @property
    def history_path(self) -> str:
        """Path of the production history."""
        return self.fs.join(self.production_dir, HISTORY_FILE)

    def versions(self) -> list[Version]:
        """Return the validated versions, sorted by semver precedence."""
        found = []
        for name in self.fs.list_names(self.validated_dir):
            if name.startswith("v") and name.endswith(".json"):
                try:
                    found.append(Version.parse(name[1 : -len(".json")]))
                except ValueError:
                    continue
        return sorted(found)

    def record(self, version: Version) -> VersionRecord:
        """Return the record of a validated version.

        Raises
        ------
        CheckpointNotFoundError
            If the version was never validated.
        """
        existing = {v: v for v in self.versions()}
        if version not in existing:
            known = ", ".join(str(v) for v in existing) or "none"
            raise CheckpointNotFoundError(
                f"version {version} is not validated in {self.validated_dir} "
                f"(validated versions: {known})"
            )
        path = self.record_path(existing[version])
        return VersionRecord.from_json(_read_json(self.fs, path), path)

    def records(self) -> list[VersionRecord]:
        """Return every version record, in version order."""
        return [self.record(v) for v in self.versions()]

    def promoted_epochs(self) -> frozenset[int]:
        """Return the epochs of this store's checkpoints that were promoted."""
        return frozenset(r.source_epoch for r in self.records() if r.store_id == self.store_id)

    def production(self) -> ProductionRecord | None:
        """Return the production record, or ``None`` if nothing was promoted to production."""
        path = self.production_record_path
        if not self.fs.exists(path):
            return None
        return ProductionRecord.from_json(_read_json(self.fs, path), path)

    def history(self) -> list[ProductionRecord]:
        """Return the production history, oldest first."""
        path = self.history_path
        if not self.fs.exists(path):
            return []
        entries = _read_json(self.fs, path)
        if not isinstance(entries, list):
            raise CheckpointFormatError(f"{path} must hold a JSON list")
        return [ProductionRecord.from_json(e, f"{path}, entry #{i}") for i, e in enumerate(entries)]

    def _owned(self, path: str) -> bool:
        return bool(self.store_id) and read_store_id(self.fs, path) == self.store_id

    # --- promotion --------------------------------------------------------------------------

    def validate(
        self,
        record: CheckpointRecord,
        source_path: str,
        version: Version,
        checks: Mapping[str, Any],
    ) -> VersionRecord:
        """Promote a committed checkpoint to ``validated/v<version>``."""
        failed = sorted(name for name, value in checks.items() if value is False)
        if failed:
            raise PromotionError(
                f"cannot validate epoch {record.epoch} as {version}: checks {failed} failed "
                f"(a check passes with any value but False)"
            )
        if version in self.versions():
            raise PromotionError(
                f"version {version} is already validated ({self.record_path(version)}); "
                f"versions are immutable: choose a new version"
            )
        target = self.file_path(version)
        if self.fs.exists(target) and not self._owned(target):
            raise PromotionError(
                f"{target} exists but was not written by this manager; move it away first"
            )
        self.fs.makedirs(self.validated_dir)
        try:
            copy_verified(self.fs, source_path, target, record.digest)
        except (CorruptCheckpointError, FileNotFoundError) as exc:
            raise PromotionError(
                f"refusing to promote epoch {record.epoch}: its checkpoint failed "
                f"verification ({exc})"
            ) from exc
        git = git_info()
        result = VersionRecord(
            version=str(version),
            source_epoch=record.epoch,
            source_file=record.file,
            digest=record.digest,
            checks=dict(checks),
            metrics=dict(record.metrics),
            promoted_at=utc_now(),
            git_hash=git.commit,
            git_dirty=git.dirty,
            store_id=self.store_id,
        )
        self.fs.make_read_only(target)
        path = self.record_path(version)
        self.fs.write_bytes(path, _dumps(result.to_json()))
        self.fs.make_read_only(path)
        return result

    def to_production(self, version: Version) -> ProductionRecord:
        """Make a validated version the production model."""
        try:
            source = self.record(version)
        except CheckpointNotFoundError as exc:
            raise PromotionError(
                f"cannot promote {version} to production: it is not validated; run "
                f"promote(epoch=..., to='validated', version='{version}') first"
            ) from exc
        current = self.production()
        history = self.history()
        resuming = bool(history) and history[-1].version == source.version
        if (
            current is not None
            and current.version == source.version
            and resuming
            and check_file(self.fs, self.production_file, current.digest) is None
        ):
            return current
        target = self.production_file
        if current is None and self.fs.exists(target) and not self._owned(target):
            raise PromotionError(
                f"{target} exists but was not written by this manager; move it away first"
            )
        self.fs.makedirs(self.production_dir)
        try:
            copy_verified(
                self.fs, self.file_path(Version.parse(source.version)), target, source.digest
            )
        except (CorruptCheckpointError, FileNotFoundError) as exc:
            raise PromotionError(
                f"refusing to promote {version} to production: its validated file failed "
                f"verification ({exc})"
            ) from exc
        git = git_info()
        entry = ProductionRecord(
            version=source.version,
            source_epoch=source.source_epoch,
            digest=source.digest,
            promoted_at=utc_now(),
            previous_version=None if current is None else current.version,
            git_hash=git.commit,
            git_dirty=git.dirty,
        )
        if resuming:
            entry = history[-1]
        else:
            self.fs.write_bytes(self.history_path, _dumps([e.to_json() for e in [*history, entry]]))
        self.fs.write_bytes(self.production_record_path, _dumps(entry.to_json()))
        return entry
