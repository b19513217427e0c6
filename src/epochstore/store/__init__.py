"""The artifact store: per-epoch Zarr v3 nodes, atomic writes, lazy reads."""

from epochstore.store.codecs import DEFAULT_CODEC, Codec, Layout
from epochstore.store.manifest import AnalyzerManifest, FieldManifest
from epochstore.store.reader import ArtifactLoader
from epochstore.store.writer import ArtifactStore

__all__ = [
    "DEFAULT_CODEC",
    "AnalyzerManifest",
    "ArtifactLoader",
    "ArtifactStore",
    "Codec",
    "FieldManifest",
    "Layout",
]
