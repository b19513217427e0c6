"""Semantic versions (https://semver.org, 2.0.0) for promoted checkpoints.

Only what promotion needs: parse and validate a version string, and order versions by semver
precedence (``1.10.0 > 1.9.0``, ``1.0.0-rc.1 < 1.0.0``). Versions equal in precedence (they differ
only in ``+build`` metadata) are the same version: promoting both is reusing a version.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from epochstore.errors import InvalidVersionError

__all__ = ["Version", "parse_version"]

_MAX_LENGTH: Final = 128
_IDENT: Final = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER: Final = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A semantic version ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``, ordered by precedence.

    Build as ``Version.parse("1.2.3")``. Comparison and hashing follow semver precedence:
    numeric parts compare as numbers, a pre-release sorts before its release, and build
    metadata is ignored.

    Examples
    --------
    >>> Version.parse("1.10.0") > Version.parse("1.9.0")
    True
    >>> sorted(["1.0.0", "1.0.0-rc.1", "0.9.9"], key=Version.parse)
    ['0.9.9', '1.0.0-rc.1', '1.0.0']
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: object) -> Version:
        """Parse and validate a version string.

        Raises
        ------
        InvalidVersionError
            If ``text`` is not a string holding a semantic version. It subclasses ``ValueError``.
        """
        if not isinstance(text, str):
            raise InvalidVersionError(
                f"a version must be a str like '1.0.0', got {type(text).__name__}: {text!r}"
            )
        match = _SEMVER.fullmatch(text) if len(text) <= _MAX_LENGTH else None
        if match is None:
            hint = ""
            if text[:1] in ("v", "V") and _SEMVER.fullmatch(text[1:]):
                hint = f" (write {text[1:]!r}, without the leading 'v')"
            raise InvalidVersionError(
                f"invalid version {text!r}: versions are semantic versions "
                f"MAJOR.MINOR.PATCH with optional -PRERELEASE and +BUILD, "
                f"e.g. '1.0.0' or '2.1.0-rc.1'{hint}"
            )
        pre = match.group("pre")
        build = match.group("build")
        return cls(
            major=int(match.group("major")),
            minor=int(match.group("minor")),
            patch=int(match.group("patch")),
            prerelease=tuple(pre.split(".")) if pre else (),
            build=tuple(build.split(".")) if build else (),
        )

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release (no pre-release) sorts after all of its pre-releases; numeric identifiers
        # sort before alphanumeric ones; a shorter identifier list sorts first when all shared
        # identifiers are equal (tuple comparison gives exactly that).
        if not self.prerelease:
            return (self.major, self.minor, self.patch, 1, ())
        parts = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0, parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def parse_version(text: object) -> Version:
    """Parse a semantic version string; see :meth:`Version.parse`."""
    return Version.parse(text)
