"""Freshness: which stored epochs an older analyzer version (or other run-level params) computed.

The analyzer's manifest names the ``version`` and ``params`` of the code that computes it now,
and lists in ``superseded`` the epochs still holding results of an earlier (version, params).
Every committed epoch not listed there is current. So one metadata read per analyzer tells
stale from current, with no per-epoch request, and ``load_epochs`` reads nothing more.

Only the process that plans a run (the pipeline's parent) changes this index, and always on the
safe side: epochs move into ``superseded`` *before* anything is recomputed
(:func:`supersede`) and out of it only *after* their new node is committed (:func:`refresh`).
A run killed in between leaves recomputed epochs listed as stale, to be recomputed once more,
never a stale epoch listed as current. Each epoch node also records the ``analyzer_version``
that wrote it, in its own attributes (for audits; planning never reads it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from epochstore.store.manifest import SUPERSEDED_FORMAT, AnalyzerManifest, Superseded

if TYPE_CHECKING:
    from epochstore.store.reader import _ArtifactView
    from epochstore.store.writer import ArtifactStore

__all__ = ["EPOCH_VERSION_KEY", "read_manifest", "refresh", "stale_epochs", "supersede"]

#: Attribute of an epoch group naming the analyzer version that wrote it.
EPOCH_VERSION_KEY = "analyzer_version"


def read_manifest(store: _ArtifactView, analyzer: str) -> AnalyzerManifest:
    """Return the analyzer's manifest as stored now (one read; no cached copy)."""
    store._manifests.pop(analyzer, None)
    return store._manifest(analyzer)


def stale_epochs(
    manifest: AnalyzerManifest,
    committed: Iterable[int],
    *,
    version: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[int, str | None]:
    """Return the stale epochs among ``committed``, each with the version that computed it.

    Parameters
    ----------
    manifest
        The analyzer's manifest (:func:`read_manifest`).
    committed
        Its committed epochs (the store's listing).
    version, params
        The code's current version and run-level params, if known: when they differ from the
        manifest's, every committed epoch is stale (the manifest has not been superseded yet).
    """
    committed = sorted(set(committed))
    differs = (version is not None and version != manifest.version) or (
        params is not None and dict(params) != dict(manifest.params)
    )
    if differs:
        stale: dict[int, str | None] = dict.fromkeys(committed, manifest.version)
    else:
        stale = {}
    present = set(committed)
    for entry in manifest.superseded:
        for epoch in entry.epochs:
            if epoch in present:
                stale[epoch] = entry.version
    return dict(sorted(stale.items()))


def _merge(entries: Iterable[Superseded]) -> tuple[Superseded, ...]:
    """One entry per (version, params), epochs sorted and unique, empty entries dropped."""
    merged: dict[str, Superseded] = {}
    for entry in entries:
        key = json.dumps([entry.version, dict(entry.params)], sort_keys=True)
        if key in merged:
            epochs = set(merged[key].epochs) | set(entry.epochs)
            merged[key] = replace(merged[key], epochs=tuple(sorted(epochs)))
        else:
            merged[key] = replace(entry, epochs=tuple(sorted(set(entry.epochs))))
    return tuple(e for e in merged.values() if e.epochs)


def supersede(
    store: ArtifactStore, analyzer: str, version: str | None, params: Mapping[str, Any]
) -> AnalyzerManifest:
    """Make ``(version, params)`` the analyzer's current code; its stored epochs become stale.

    Every committed epoch not already listed as superseded is listed under the manifest's
    previous (version, params). Nothing is deleted: stale epochs stay readable until
    recomputed (``AnalysisPipeline.run(recompute_stale=True)``).

    Returns
    -------
    AnalyzerManifest
        The manifest as written.
    """
    manifest = read_manifest(store, analyzer)
    if manifest.version == version and dict(manifest.params) == dict(params):
        return manifest
    listed = {e for entry in manifest.superseded for e in entry.epochs}
    current = [e for e in store.get_epochs(analyzer) if e not in listed]
    entries = _merge(
        [*manifest.superseded, Superseded(manifest.version, manifest.params, tuple(current))]
    )
    updated = replace(manifest, version=version, params=dict(params), superseded=entries)
    store._require_format(SUPERSEDED_FORMAT)
    store._write_manifest(updated)
    return updated


def refresh(store: ArtifactStore, analyzer: str, epochs: Iterable[int]) -> AnalyzerManifest:
    """Record that ``epochs`` were recomputed by the current code (drop them from the index).

    Call it only after their new nodes are committed.
    """
    manifest = read_manifest(store, analyzer)
    done = set(epochs)
    if not manifest.superseded or not done:
        return manifest
    entries = _merge(
        replace(entry, epochs=tuple(e for e in entry.epochs if e not in done))
        for entry in manifest.superseded
    )
    if entries == manifest.superseded:
        return manifest
    updated = replace(manifest, superseded=entries)
    store._write_manifest(updated)
    return updated
