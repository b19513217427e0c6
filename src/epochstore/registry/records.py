"""The records of promoted checkpoints: validated versions and the production pointer.

A version is a semantic version (https://semver.org), parsed and ordered by the maintained
``semver`` package: ``1.10.0 > 1.9.0``, ``1.0.0-rc.1 < 1.0.0``, and versions that differ only
in ``+build`` metadata are the same version (promoting both is reusing a version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from semver import Version

from epochstore._version import __version__
from epochstore.checkpoints.fileformat import Digest
from epochstore.checkpoints.state import decode_tree, encode_tree
from epochstore.errors import CheckpointFormatError, InvalidVersionError

__all__ = ["ProductionRecord", "Version", "VersionRecord", "parse_version"]

_RECORD_FORMAT: Final = 1
_MAX_VERSION_LENGTH: Final = 128


def parse_version(text: object) -> Version:
    """Parse and validate a semantic version ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``.

    Examples
    --------
    >>> parse_version("1.10.0") > parse_version("1.9.0")
    True
    >>> sorted(["1.0.0", "1.0.0-rc.1", "0.9.9"], key=parse_version)
    ['0.9.9', '1.0.0-rc.1', '1.0.0']

    Raises
    ------
    InvalidVersionError
        If ``text`` is not a string holding a semantic version. It subclasses ``ValueError``.
    """
    if not isinstance(text, str):
        raise InvalidVersionError(
            f"a version must be a str like '1.0.0', got {type(text).__name__}: {text!r}"
        )
    try:
        if not text.isascii() or len(text) > _MAX_VERSION_LENGTH:
            raise ValueError(text)
        return Version.parse(text)
    except ValueError:
        hint = ""
        if text[:1] in ("v", "V") and Version.is_valid(text[1:]):
            hint = f" (write {text[1:]!r}, without the leading 'v')"
        raise InvalidVersionError(
            f"invalid version {text!r}: versions are semantic versions MAJOR.MINOR.PATCH with "
            f"optional -PRERELEASE and +BUILD, e.g. '1.0.0' or '2.1.0-rc.1'{hint}"
        ) from None


def _damaged(where: str, problem: str) -> CheckpointFormatError:
    return CheckpointFormatError(
        f"{where} {problem}; restore it from a backup, or remove it to forget that record"
    )


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
            raise _damaged(where, "is not an epochstore version record")
        try:
            return cls(
                version=str(parse_version(data["version"])),
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
            raise _damaged(where, f"is an invalid version record ({exc})") from None


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
            raise _damaged(where, "is not an epochstore production record")
        try:
            return cls(
                version=str(parse_version(data["version"])),
                source_epoch=int(data["source_epoch"]),
                digest=Digest.from_json(data, where),
                promoted_at=str(data["promoted_at"]),
                previous_version=data.get("previous_version"),
                git_hash=data.get("git_hash"),
                git_dirty=data.get("git_dirty"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _damaged(where, f"is an invalid production record ({exc})") from None


