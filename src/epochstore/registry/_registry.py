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
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from epochstore.checkpoints.fileformat import CHUNK_SIZE
from epochstore.checkpoints.layout import MapLocation, foreign_file, load_verified
from epochstore.checkpoints.state import encode_tree
from epochstore.checkpoints.verification import VerificationProblem, check
from epochstore.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    PromotionError,
)
from epochstore.naming import describe_epochs, validate_epoch
from epochstore.provenance import git_info, utc_now
from epochstore.registry.records import ProductionRecord, Version, VersionRecord, parse_version

if TYPE_CHECKING:
    from epochstore.checkpoints.fileformat import Digest
    from epochstore.checkpoints.layout import Checkpoint
    from epochstore.checkpoints.manifest import CheckpointRecord, Manifest
    from epochstore.location import FileSystem

__all__ = ["PRODUCTION_DIR", "VALIDATED_DIR", "PromotionTarget", "Registry"]

PromotionTarget = Literal["validated", "production"]

VALIDATED_DIR: Final = "validated"
PRODUCTION_DIR: Final = "production"
PRODUCTION_FILE: Final = "model.safetensors"
PRODUCTION_RECORD: Final = "model.json"
HISTORY_FILE: Final = "history.json"
_VERSION_FILE: Final = re.compile(r"v.+\.(safetensors|json)")
_PRODUCTION_FILES: Final = frozenset({PRODUCTION_FILE, PRODUCTION_RECORD, HISTORY_FILE})


def _read_json(fs: FileSystem, path: str) -> Any:
    try:
        return json.loads(fs.read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointFormatError(
            f"{path} is not valid JSON ({exc}); restore it from a backup, or remove it to "
            "forget that record"
        ) from None


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
        while chunk := reader.read(CHUNK_SIZE):
            file_hash.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        if size != digest.size or file_hash.hexdigest() != digest.sha256:
            raise CorruptCheckpointError(
                f"{source} does not match its recorded size and sha256 "
                f"({size} bytes, sha256 {file_hash.hexdigest()}; recorded {digest.size} bytes, "
                f"{digest.sha256}); it is corrupt or was changed"
            )


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
                    found.append(parse_version(name[1 : -len(".json")]))
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
            raise CheckpointFormatError(
                f"{path} must hold a JSON list; restore it from a backup, or remove it to "
                "forget the production history"
            )
        return [ProductionRecord.from_json(e, f"{path}, entry #{i}") for i, e in enumerate(entries)]

    def remove_stale(self, stale_after: float) -> None:
        """Remove temporary files of promotions that died more than ``stale_after`` s ago."""
        self.fs.remove_stale(self.validated_dir, _VERSION_FILE.fullmatch, stale_after)
        self.fs.remove_stale(self.production_dir, _PRODUCTION_FILES.__contains__, stale_after)

    def verify(self) -> tuple[list[str], list[VerificationProblem]]:
        """Check every version and the production copy against their records.

        Returns the verified paths and the problems (a record that does not parse is one).
        """
        verified: list[str] = []
        problems: list[VerificationProblem] = []

        def add(path: str, digest: Digest, version: str) -> None:
            problem = check(self.fs, path, digest, version=version)
            verified.extend([path] if problem is None else [])
            problems.extend([] if problem is None else [problem])

        for version in self.versions():
            try:
                entry = self.record(version)
            except CheckpointFormatError as exc:
                path = self.record_path(version)
                problems.append(VerificationProblem(path, str(exc), version=str(version)))
                continue
            add(self.file_path(version), entry.digest, entry.version)
        try:
            production = self.production()
            self.history()
        except CheckpointFormatError as exc:
            problems.append(VerificationProblem(self.production_dir, str(exc)))
        else:
            if production is not None:
                add(self.production_file, production.digest, production.version)
        return verified, problems

    # --- loading ----------------------------------------------------------------------------

    def load_version(
        self, version: str, *, map_location: MapLocation, include_optimizer: bool
    ) -> Checkpoint:
        """Load a validated version, verified against its record (``version`` key set)."""
        record = self.record(parse_version(version))
        checkpoint = load_verified(
            self.fs,
            self.file_path(parse_version(record.version)),
            record.digest,
            record.source_epoch,
            include_optimizer=include_optimizer,
            map_location=map_location,
        )
        checkpoint["version"] = record.version
        return checkpoint

    def load_production(self, *, map_location: MapLocation, include_optimizer: bool) -> Checkpoint:
        """Load the production copy, verified against its record (``version`` key set)."""
        record = self.production()
        if record is None:
            raise CheckpointNotFoundError(
                f"nothing was promoted to production in {self.production_dir}; promote a "
                "validated version first: promote(version=..., to='production')"
            )
        try:
            checkpoint = load_verified(
                self.fs,
                self.production_file,
                record.digest,
                record.source_epoch,
                include_optimizer=include_optimizer,
                map_location=map_location,
            )
        except CorruptCheckpointError as exc:
            raise CorruptCheckpointError(
                f"the production copy does not match {self.production_record_path} "
                f"(version {record.version}): {exc}. After an interrupted promotion, run "
                f"promote(version=..., to='production') again"
            ) from exc
        checkpoint["version"] = record.version
        return checkpoint

    def _copy_or_refuse(self, source: str, target: str, digest: Digest, what: str) -> None:
        try:
            copy_verified(self.fs, source, target, digest)
        except (CorruptCheckpointError, FileNotFoundError) as exc:
            raise PromotionError(
                f"refusing to promote {what} failed verification ({exc}); restore it from a "
                f"backup, or promote another checkpoint"
            ) from exc

    # --- promotion --------------------------------------------------------------------------

    def promote(
        self,
        manifest: Manifest,
        checkpoint_dir: str,
        epoch: int | None,
        *,
        to: PromotionTarget,
        version: str,
        checks: Mapping[str, Any] | None,
    ) -> VersionRecord | ProductionRecord:
        """Promote a committed checkpoint of ``manifest`` (see ``CheckpointManager.promote``)."""
        parsed = parse_version(version)
        if to == "validated":
            if epoch is None:
                raise ValueError(
                    "promote(to='validated') needs the epoch to validate: pass epoch=..."
                )
            if checks is not None and not isinstance(checks, Mapping):
                raise TypeError(
                    f"checks must be a mapping of check name to result, got "
                    f"{type(checks).__name__}: pass checks={{'test_accuracy': 0.99}}"
                )
            check_values = dict(checks or {})
            encode_tree(check_values, "checks", None)
            epoch = validate_epoch(epoch)
            record = manifest.get(epoch)
            if record is None:
                raise CheckpointNotFoundError(
                    f"cannot promote epoch {epoch}: it has no committed checkpoint in "
                    f"{checkpoint_dir} (committed: {describe_epochs(manifest.epochs())}); save "
                    "it first or choose a committed epoch"
                )
            source = self.fs.join(checkpoint_dir, record.file)
            return self.validate(record, source, parsed, check_values)
        if to == "production":
            if checks:
                raise ValueError(
                    "checks belong to promote(to='validated'), where a version is checked; "
                    "drop checks= when promoting a validated version to production"
                )
            if epoch is not None:
                source_record = self.record(parsed) if parsed in self.versions() else None
                if source_record is not None and source_record.source_epoch != validate_epoch(
                    epoch
                ):
                    raise PromotionError(
                        f"version {parsed} was validated from epoch "
                        f"{source_record.source_epoch}, not {epoch}: pass "
                        f"epoch={source_record.source_epoch} or leave epoch out"
                    )
            return self.to_production(parsed)
        raise ValueError(f"to must be 'validated' or 'production', got {to!r}")

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
        if foreign_file(self.fs, target, self.store_id):
            raise PromotionError(
                f"{target} exists but was not written by this manager; move it away first"
            )
        self.fs.makedirs(self.validated_dir)
        self._copy_or_refuse(
            source_path, target, record.digest, f"epoch {record.epoch}: its checkpoint"
        )
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
            and check(self.fs, self.production_file, current.digest) is None
        ):
            return current
        target = self.production_file
        if current is None and foreign_file(self.fs, target, self.store_id):
            raise PromotionError(
                f"{target} exists but was not written by this manager; move it away first"
            )
        self.fs.makedirs(self.production_dir)
        self._copy_or_refuse(
            self.file_path(parse_version(source.version)),
            target,
            source.digest,
            f"{version} to production: its validated file",
        )
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
