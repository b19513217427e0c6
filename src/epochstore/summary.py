"""The variant summary: one small derived document per run, and the variant table over runs.

``<run>/summary.json`` holds what a table of runs shows: the final metrics, the checkpoint
count, the analysed fraction, stale epochs, and the epochs of the events the family declares
(:class:`~epochstore.interface.EventSpec`, e.g. modadd's memorisation and grokking). It is
derived from the checkpoints' manifest and the artifact store and never the source of truth:
training and analysis rewrite it (:func:`write_summary`) whenever they change the run, and
:func:`summarize` rebuilds it from the stored data at any time. ``epochstore ls`` reads only
these documents, so listing many runs costs one small read per run.

The variant table (:func:`variant_table`) and the aligned series for peer comparison
(:func:`peer_series`) are built from them for the CLI, notebooks and the dashboard.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from epochstore.location import join
from epochstore.run import ARTIFACTS_DIR, CHECKPOINTS_DIR, Variant, read_variant

if TYPE_CHECKING:
    import xarray as xr

    from epochstore.interface import EventSpec

#: The family shown for a run of artifacts alone (no ``variant.json``).
NO_FAMILY = "-"

__all__ = [
    "NO_FAMILY",
    "SUMMARY_FILE",
    "VariantSummary",
    "family_events",
    "format_table",
    "peer_series",
    "read_summary",
    "summarize",
    "swept_params",
    "variant_table",
    "write_summary",
]

SUMMARY_FILE: Final = "summary.json"
#: ``epochstore.checkpoints.manifest.MANIFEST_NAME`` (that module imports torch).
_CHECKPOINT_MANIFEST: Final = "manifest.json"
#: Version of the summary document; a reader rebuilds documents of another version.
SUMMARY_VERSION: Final = 1


@dataclass(frozen=True)
class VariantSummary:
    """What a table of runs shows about one run (derived; rebuild with :func:`summarize`).

    Attributes
    ----------
    run
        The run location.
    family
        The run's family.
    params
        The run's parameters (``variant.json``).
    checkpoints
        Committed checkpoints.
    last_epoch
        The last checkpoint's epoch.
    final_metrics
        The metrics of the last checkpoint.
    analysed
        Fraction of (analyzer, checkpoint) pairs stored, over the family's analyzers (or the
        stored ones if the family is not installed); 0 with no checkpoints.
    analyzers
        Stored epochs per analyzer.
    stale
        Stale (analyzer, epoch) pairs (computed by another analyzer version or params).
    events
        The first epoch of each event the family declares, ``None`` if not (yet) reached or
        its series is not stored.
    finished
        Whether training recorded that it finished.
    updated
        POSIX time the summary was computed.
    """

    run: str
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    checkpoints: int = 0
    last_epoch: int | None = None
    final_metrics: Mapping[str, float] = field(default_factory=dict)
    analysed: float = 0.0
    analyzers: Mapping[str, int] = field(default_factory=dict)
    stale: int = 0
    events: Mapping[str, int | None] = field(default_factory=dict)
    finished: bool = False
    updated: float = 0.0

    def to_json(self) -> str:
        """Return the JSON document stored as ``summary.json`` (NaN metrics as ``null``)."""
        data = asdict(self)
        data["final_metrics"] = {
            k: (None if not math.isfinite(v) else v) for k, v in self.final_metrics.items()
        }
        return json.dumps({"summary_version": SUMMARY_VERSION, **data}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> VariantSummary:
        """Inverse of :meth:`to_json`; ``ValueError`` for another document version."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("summary_version", None) != SUMMARY_VERSION:
            raise ValueError("not a summary document of this version")
        data["final_metrics"] = {
            k: (math.nan if v is None else float(v)) for k, v in data["final_metrics"].items()
        }
        return cls(**data)


def _checkpoint_records(
    run: str, storage_options: Mapping[str, Any] | None
) -> tuple[Any, ...]:
    """The committed checkpoints' records, from the checkpoint manifest alone."""
    from epochstore.location import open_filesystem

    fs, root = open_filesystem(join(run, CHECKPOINTS_DIR), storage_options)
    path = fs.join(root, _CHECKPOINT_MANIFEST)
    try:
        data = fs.read_bytes(path)
    except FileNotFoundError:
        return ()
    # Imported only now: its module imports torch (checkpoints/state.py), which a run without
    # checkpoints (artifacts only) should not pay for when it is listed.
    from epochstore.checkpoints.manifest import Manifest

    return Manifest.from_bytes(data, path).checkpoints


def family_events(family: Any) -> tuple[EventSpec, ...]:
    """Return the events a family declares (its optional ``events()``), or none."""
    events = getattr(family, "events", None)
    return tuple(events()) if callable(events) else ()


def _series(
    loader: Any, records: Sequence[Any], spec: EventSpec, stored: Sequence[str]
) -> tuple[list[int], list[float]] | None:
    if spec.source == "metrics":
        pairs = [(r.epoch, r.metrics.get(spec.series)) for r in records]
        pairs = [(e, float(v)) for e, v in pairs if v is not None]
        return [e for e, _ in pairs], [v for _, v in pairs]
    if spec.source not in stored:
        return None
    dataset = loader.load_epochs(spec.source)
    if spec.series not in dataset or dataset[spec.series].ndim != 1:
        return None
    values = dataset[spec.series].values
    return [int(e) for e in dataset["epoch"].values], [float(v) for v in values]


def summarize(
    run: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    family: Any = None,
) -> VariantSummary:
    """Compute a run's summary from its stored checkpoints and artifacts.

    Reads the checkpoints' manifest, the artifact store's listings and manifests, and the
    scalar series the family's events name (one stacked read per analyzer).

    Parameters
    ----------
    run
        The run location.
    storage_options
        fsspec options for a URL.
    family
        The run's family object (default: the registered family named in ``variant.json``; a
        run whose family is not installed gets no events, and its stored analyzers count).
    """
    from epochstore.errors import EpochstoreError
    from epochstore.plugins import get_family
    from epochstore.status import is_finished
    from epochstore.store import ArtifactLoader
    from epochstore.store.freshness import read_manifest, stale_epochs

    location = os.fspath(run)
    try:
        variant = read_variant(location, storage_options=storage_options)
    except FileNotFoundError:  # a run of artifacts alone (ArtifactStore, no family)
        variant = Variant(family=NO_FAMILY)
    records = _checkpoint_records(location, storage_options)
    epochs = [r.epoch for r in records]
    if family is None and variant.family != NO_FAMILY:
        try:
            family = get_family(variant.family)
        except EpochstoreError:
            family = None
    loader = ArtifactLoader(location, storage_options=storage_options, path=ARTIFACTS_DIR)
    stored = loader.get_available_analyzers()
    expected = [a.name for a in family.analyzers()] if family is not None else stored
    counts: dict[str, int] = {}
    analysed_pairs = 0
    stale = 0
    for name in stored:
        manifest = read_manifest(loader, name)
        listed = set(loader.get_epochs(name))
        counts[name] = len(listed)
        if name in expected:
            analysed_pairs += len(listed & set(epochs))
        stale += len(stale_epochs(manifest, listed))
    total = len(expected) * len(epochs)
    events: dict[str, int | None] = {}
    for spec in family_events(family):
        series = _series(loader, records, spec, stored)
        events[spec.name] = None if series is None else spec.first_epoch(*series)
    return VariantSummary(
        run=location,
        family=variant.family,
        params=dict(variant.params),
        checkpoints=len(records),
        last_epoch=epochs[-1] if epochs else None,
        final_metrics=dict(records[-1].metrics) if records else {},
        analysed=analysed_pairs / total if total else 0.0,
        analyzers=counts,
        stale=stale,
        events=events,
        finished=is_finished(location, storage_options=storage_options),
        updated=time.time(),
    )


def write_summary(
    run: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    family: Any = None,
) -> VariantSummary:
    """Compute the run's summary (:func:`summarize`), write ``<run>/summary.json``; return it."""
    from epochstore.location import open_filesystem

    summary = summarize(run, storage_options=storage_options, family=family)
    fs, root = open_filesystem(run, storage_options)
    fs.write_bytes(fs.join(root, SUMMARY_FILE), summary.to_json().encode())
    return summary


def read_summary(
    run: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    rebuild: bool = True,
) -> VariantSummary | None:
    """Return the run's stored summary (one small read).

    Parameters
    ----------
    run
        The run location.
    storage_options
        fsspec options for a URL.
    rebuild
        If the run has no (readable) summary, compute one with :func:`summarize` (not
        written: listing never writes); else return ``None``.
    """
    from epochstore.location import open_filesystem

    fs, root = open_filesystem(run, storage_options)
    try:
        return VariantSummary.from_json(fs.read_bytes(fs.join(root, SUMMARY_FILE)))
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        pass
    if not rebuild:
        return None
    return summarize(run, storage_options=storage_options)


def swept_params(summaries: Sequence[VariantSummary]) -> dict[str, list[str]]:
    """Per family, the parameters whose values differ between its runs (the swept ones)."""
    by_family: dict[str, list[VariantSummary]] = {}
    for summary in summaries:
        by_family.setdefault(summary.family, []).append(summary)
    swept: dict[str, list[str]] = {}
    for family, members in by_family.items():
        keys = sorted({k for m in members for k in m.params})
        swept[family] = [
            k for k in keys
            if len({json.dumps(m.params.get(k), sort_keys=True) for m in members}) > 1
        ]
    return swept


def variant_table(
    runs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per run: family, swept params, final metrics, checkpoints, analysed, events.

    Parameters
    ----------
    runs
        A root (every run under it) or a list of run locations.
    storage_options
        fsspec options for URLs.

    Returns
    -------
    list of dict
        Rows with the keys ``run``, ``family``, ``installed`` (whether that family's plug-in
        is installed here; runs of artifacts alone have family ``"-"``), ``analyzers`` (the
        stored analyzers' names), ``swept`` (the swept params' values),
        ``final_metrics``, ``checkpoints``, ``last_epoch``, ``analysed``, ``stale``,
        ``events``, ``finished``, in run order: ready for a table or ``pandas.DataFrame``.
    """
    from epochstore.runs import run_locations

    if isinstance(runs, str | os.PathLike):
        runs = run_locations(runs, storage_options)
    from epochstore.plugins import family_names

    summaries = [s for r in runs if (s := read_summary(r, storage_options=storage_options))]
    swept = swept_params(summaries)
    installed = set(family_names())  # entry-point metadata: no family is imported
    return [
        {
            "run": s.run,
            "family": s.family,
            "installed": s.family == NO_FAMILY or s.family in installed,
            "analyzers": sorted(s.analyzers),
            "swept": {k: s.params.get(k) for k in swept[s.family]},
            "final_metrics": dict(s.final_metrics),
            "checkpoints": s.checkpoints,
            "last_epoch": s.last_epoch,
            "analysed": s.analysed,
            "stale": s.stale,
            "events": dict(s.events),
            "finished": s.finished,
        }
        for s in summaries
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], *, root: str | None = None) -> str:
    """Render :func:`variant_table` rows as an aligned text table (one line per run)."""
    swept = sorted({k for r in rows for k in r["swept"]})
    metrics = sorted({k for r in rows for k in r["final_metrics"]})
    events = sorted({k for r in rows for k in r["events"]})
    prefix = root.rstrip("/") + "/" if root else ""
    header = ["run", "family", *swept, "ckpts", "analyzers", "analysed", "stale", *metrics,
              *(f"{e}@" for e in events), "done"]
    lines = [header]
    for r in rows:
        name = r["run"][len(prefix):] if prefix and r["run"].startswith(prefix) else r["run"]
        lines.append([
            name or ".",
            r["family"] + ("" if r.get("installed", True) else " (not installed)"),
            *(_cell(r["swept"].get(k)) for k in swept),
            str(r["checkpoints"]),
            str(len(r.get("analyzers", ()))),
            f"{100 * r['analysed']:.0f}%",
            str(r["stale"]),
            *(_cell(r["final_metrics"].get(k)) for k in metrics),
            *(_cell(r["events"].get(e)) for e in events),
            "yes" if r["finished"] else "no",
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def peer_series(
    runs: Sequence[str | os.PathLike[str]],
    source: str,
    series: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """One scalar series of many runs, aligned by epoch, for a peer-comparison plot.

    Parameters
    ----------
    runs
        The runs to compare (e.g. every variant of a family).
    source
        ``"metrics"`` (the checkpoints' metrics) or an analyzer's name.
    series
        The metric, or the analyzer's scalar field.
    storage_options
        fsspec options for URLs.

    Returns
    -------
    xarray.DataArray
        Dims ``("run", "epoch")`` over the union of epochs (NaN where a run has no value),
        with the swept parameters as coordinates along ``run`` (for legends and colours).
    """
    import numpy as np
    import xarray as xr

    from epochstore.store import ArtifactLoader

    locations = [os.fspath(r) for r in runs]
    columns: list[dict[int, float]] = []
    for run in locations:
        if source == "metrics":
            records = _checkpoint_records(run, storage_options)
            columns.append({
                r.epoch: float(r.metrics[series]) for r in records if series in r.metrics
            })
            continue
        loader = ArtifactLoader(run, storage_options=storage_options)
        if source not in loader.get_available_analyzers():
            columns.append({})
            continue
        data = loader.load_epochs(source)[series]
        if data.ndim != 1:
            raise ValueError(
                f"{source}.{series} has dims {data.dims} per run; peer_series takes a scalar "
                "field (reduce it first, e.g. with ArtifactLoader.load_epochs(...).mean(...))"
            )
        columns.append(dict(zip(data["epoch"].values.tolist(), data.values.tolist(),
                                strict=True)))
    epochs = sorted({e for column in columns for e in column})
    values = np.full((len(locations), len(epochs)), np.nan)
    index = {e: i for i, e in enumerate(epochs)}
    for row, column in enumerate(columns):
        for epoch, value in column.items():
            values[row, index[epoch]] = value
    summaries = [read_summary(r, storage_options=storage_options) for r in locations]
    known = [s for s in summaries if s is not None]
    swept = sorted({k for keys in swept_params(known).values() for k in keys})
    coords: dict[str, Any] = {"run": locations, "epoch": epochs}
    for key in swept:
        coords[key] = ("run", [_coord(s.params.get(key)) if s else None for s in summaries])
    return xr.DataArray(values, dims=("run", "epoch"), coords=coords, name=f"{source}.{series}")


def _coord(value: Any) -> Any:
    """A param as a coordinate value: scalars as they are, anything else as its JSON text."""
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return json.dumps(value, sort_keys=True)
