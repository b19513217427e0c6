"""The analyzer manifest: per-field dims, dtype, per-epoch shape and layout, written once.

It lives in the analyzer group's attributes under the ``"epochstore"`` key, so a reader learns
everything about an analyzer's fields from one small metadata read, without opening any epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from epochstore.store.codecs import DEFAULT_CODEC, Codec, Layout

__all__ = [
    "ATTRS_KEY",
    "CREATED_FORMAT",
    "DATA_NODE_KEY",
    "FORMAT_VERSION",
    "GENERATIONS_FORMAT",
    "SUPERSEDED_FORMAT",
    "WRITE_TOKEN_KEY",
    "AnalyzerManifest",
    "FieldManifest",
    "Superseded",
]

#: Key of epochstore's own entries in zarr attributes.
ATTRS_KEY = "epochstore"
#: Attribute of an epoch group and its arrays naming the write that made them.
WRITE_TOKEN_KEY = "epochstore_write"
#: Attribute of an epoch group naming the node that holds its data when it is not the group
#: itself: a later generation (``epoch_00042.g1``), written by an overwrite on an object store.
DATA_NODE_KEY = "epochstore_data"
#: Newest version of the on-disk format this library reads (``docs/format.md``); stored as
#: ``epochstore_format``. 2 added ``superseded`` to the analyzer manifest (which epochs an
#: older version computed); 3 added generations (an epoch's data in ``epoch_NNNNN.gK``, named
#: by ``DATA_NODE_KEY``, written by overwrites on object stores).
FORMAT_VERSION = 3
#: The version a new store is marked with. A feature of a later version marks the store with
#: that version when it is first used (``ArtifactStore._require_format``), so that only stores
#: that need it are closed to older readers.
CREATED_FORMAT = 2
#: The versions that added ``superseded`` and generations.
SUPERSEDED_FORMAT = 2
GENERATIONS_FORMAT = 3


@dataclass(frozen=True)
class FieldManifest:
    """What every epoch of one field looks like."""

    dims: tuple[str, ...]
    dtype: str
    shape: tuple[int, ...]
    layout: Layout

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the analyzer's attributes."""
        return {
            "dims": list(self.dims),
            "dtype": self.dtype,
            "shape": list(self.shape),
            **self.layout.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldManifest:
        """Inverse of :meth:`to_dict`."""
        return cls(
            dims=tuple(str(d) for d in data["dims"]),
            dtype=str(data["dtype"]),
            shape=tuple(int(s) for s in data["shape"]),
            layout=Layout.from_dict(dict(data)),
        )


@dataclass(frozen=True)
class Superseded:
    """Epochs computed by an earlier version or with other run-level params of an analyzer.

    Attributes
    ----------
    version
        The analyzer version that computed them.
    params
        The run-level params they were computed with.
    epochs
        The epochs, sorted (some may have been deleted since: intersect with the listing).
    """

    version: str | None
    params: Mapping[str, Any]
    epochs: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the manifest."""
        return {"version": self.version, "params": dict(self.params), "epochs": list(self.epochs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Superseded:
        """Inverse of :meth:`to_dict`."""
        return cls(
            version=data.get("version"),
            params=dict(data.get("params", {})),
            epochs=tuple(int(e) for e in data.get("epochs", ())),
        )


@dataclass(frozen=True)
class AnalyzerManifest:
    """Metadata of one analyzer: its fields, codec, version, run-level params and epochs.

    Attributes
    ----------
    analyzer
        The analyzer's name.
    fields
        Per field: dims, dtype, per-epoch shape and chunk layout. Empty until the first epoch
        is written.
    codec
        The compression and checksum codec of every chunk.
    version
        The analyzer's version string, if it gave one.
    params
        Run-level parameters the analyzer computed once (e.g. key frequencies).
    epochs
        The committed epochs, sorted (filled in by readers from the store listing).
    superseded
        Epochs still holding results of an earlier version or other params (stale), one entry
        per (version, params); every other committed epoch was computed by ``version`` with
        ``params``. See :mod:`epochstore.store.freshness`.
    """

    analyzer: str
    fields: Mapping[str, FieldManifest] = field(default_factory=dict)
    codec: Codec = DEFAULT_CODEC
    version: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    epochs: tuple[int, ...] = ()
    superseded: tuple[Superseded, ...] = ()

    def to_attrs(self) -> dict[str, Any]:
        """Return the analyzer group's ``epochstore`` attribute (``epochs`` is not stored)."""
        attrs: dict[str, Any] = {
            "kind": "analyzer",
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
            "codec": self.codec.to_dict(),
            "analyzer_version": self.version,
            "params": dict(self.params),
        }
        if self.superseded:  # absent when nothing is stale: such a manifest reads as format 1
            attrs["superseded"] = [entry.to_dict() for entry in self.superseded]
        return attrs

    @classmethod
    def from_attrs(cls, analyzer: str, attrs: Mapping[str, Any]) -> AnalyzerManifest:
        """Build the manifest from the analyzer group's attributes."""
        data = attrs.get(ATTRS_KEY, {})
        return cls(
            analyzer=analyzer,
            fields={
                name: FieldManifest.from_dict(f) for name, f in data.get("fields", {}).items()
            },
            codec=Codec.from_dict(data.get("codec", {})),
            version=data.get("analyzer_version"),
            params=dict(data.get("params", {})),
            superseded=tuple(Superseded.from_dict(e) for e in data.get("superseded", ())),
        )
