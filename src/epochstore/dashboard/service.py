"""What the dashboard computes, as plain functions of plain values: testable without a browser.

:class:`DashboardService` answers the questions the web app asks:

- :meth:`~DashboardService.describe`: what does this run have? Analyzers, epochs, fields, its
  views and pickers, and a friendly status, from metadata only (listings and manifests; no
  chunk is read).
- :meth:`~DashboardService.view_figures`: the run's views at one epoch (per-epoch views) or with
  the epoch marked (cross-epoch views). A run's views are its family's declared views and the
  default views of every other analyzer (:func:`epochstore.viz.run_views`): no view is named
  here. Views read through a :class:`~epochstore.viz.RunSource` sharing the service's bounded
  caches: only the epoch shown is read, only what each view draws; cross-epoch series are read
  once and extended by new epochs alone; figures of recently viewed epochs are kept.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from epochstore._lru import LRUCache
from epochstore.checkpoints import CheckpointManager
from epochstore.errors import EpochstoreError, EpochstoreWarning
from epochstore.interface import JSONValue, Scope, StoredField, View
from epochstore.location import is_url, join, open_filesystem
from epochstore.run import CHECKPOINTS_DIR, VARIANT_FILE, read_variant
from epochstore.runs import RunEntry, find_runs
from epochstore.store import ArtifactLoader
from epochstore.store.freshness import read_manifest, stale_epochs
from epochstore.summary import VariantSummary
from epochstore.viz import RunSource, message_figure, run_views

__all__ = ["PANEL_HEIGHT", "DashboardService", "RunState", "Status", "warm_up"]

#: Height in pixels of every panel (the app sizes its graphs alike, so rows line up).
PANEL_HEIGHT: Final = 440

Status = Literal["none", "empty", "analysing", "complete", "error"]
LoaderFactory = Callable[[str], ArtifactLoader]
Options = Mapping[str, Any] | None

_RECOVERABLE = (EpochstoreError, KeyError, IndexError, ValueError, OSError)


@dataclass(frozen=True)
class RunState:
    """What a run has, from metadata only; JSON-able for the browser (``dcc.Store``).

    Attributes
    ----------
    run
        The run directory ("" for no run).
    family
        Its family (``variant.json``), or ``None`` for a run with an artifacts store alone.
    analyzers
        Each analyzer's committed epochs.
    fields
        Each analyzer's fields: ``{analyzer: {field: [dims, shape, dtype, chunks]}}``.
    epochs
        The slider's epochs: every epoch any analyzer has, sorted.
    checkpoints
        How many committed checkpoints the run has (``None``: unknown).
    views
        The run's views in display order: ``{"name", "title", "scope", "picks"}`` each.
    picks
        The picked dims of its views and their sizes (one picker each).
    stale
        Each analyzer's stale epochs (computed by an older analyzer version or other params,
        as its manifest records), for analyzers that have some.
    status
        ``"none"`` (no run picked), ``"empty"`` (no artifacts yet), ``"analysing"`` (some
        checkpoints or analyzers not analysed yet), ``"complete"`` or ``"error"``.
    message
        One friendly sentence saying so, and what to do.
    """

    run: str = ""
    family: str | None = None
    analyzers: Mapping[str, Sequence[int]] = field(default_factory=dict)
    fields: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    epochs: Sequence[int] = ()
    checkpoints: int | None = None
    views: Sequence[Mapping[str, Any]] = ()
    picks: Mapping[str, int] = field(default_factory=dict)
    stale: Mapping[str, Sequence[int]] = field(default_factory=dict)
    status: Status = "none"
    message: str = "Pick a variant."

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (for ``dcc.Store``)."""
        data = asdict(self)
        data["analyzers"] = {k: list(v) for k, v in self.analyzers.items()}
        data["fields"] = {a: {f: [list(x) if isinstance(x, tuple | list) else x for x in spec]
                              for f, spec in fs.items()} for a, fs in self.fields.items()}
        data["epochs"] = list(self.epochs)
        data["views"] = [dict(v, picks=list(v["picks"]), analyzers=list(v.get("analyzers", ())))
                         for v in self.views]
        data["stale"] = {k: list(v) for k, v in self.stale.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunState:
        """Inverse of :meth:`to_dict`; ``None`` or ``{}`` is "no run picked"."""
        if not data:
            return cls()
        return cls(
            run=str(data.get("run", "")),
            family=data.get("family"),
            analyzers={str(k): tuple(int(e) for e in v)
                       for k, v in dict(data.get("analyzers", {})).items()},
            fields={str(a): {str(f): tuple(spec) for f, spec in dict(fs).items()}
                    for a, fs in dict(data.get("fields", {})).items()},
            epochs=tuple(int(e) for e in data.get("epochs", ())),
            checkpoints=data.get("checkpoints"),
            views=tuple(dict(v) for v in data.get("views", ())),
            picks={str(k): int(v) for k, v in dict(data.get("picks", {})).items()},
            stale={str(k): tuple(int(e) for e in v)
                   for k, v in dict(data.get("stale", {})).items()},
            status=data.get("status", "none"),
            message=str(data.get("message", "")),
        )

    def stored_fields(self, analyzer: str) -> dict[str, StoredField]:
        """The fields of ``analyzer`` as :class:`~epochstore.interface.StoredField` s."""
        return {name: StoredField(analyzer, name, tuple(dims), tuple(shape), str(dtype),
                                  tuple(chunks))
                for name, (dims, shape, dtype, chunks) in self.fields.get(analyzer, {}).items()}

    def view_names(self, scope: Scope) -> list[str]:
        """The names of the run's views of ``scope``, in display order."""
        return [str(v["name"]) for v in self.views if v["scope"] == scope]

    def stale_note(self, analyzers: Sequence[str]) -> str:
        """``"stale: 3 of 5 epochs of output_norm"`` for a view reading ``analyzers``, or ``""``."""
        parts = [f"{len(self.stale[a])} of {len(self.analyzers.get(a, ()))} epochs of {a}"
                 for a in analyzers if self.stale.get(a)]
        return f"stale: {', '.join(parts)}" if parts else ""

    def nearest_epoch(self, analyzer: str, epoch: int) -> int | None:
        """The epoch of ``analyzer`` closest to ``epoch`` (ties: the earlier), or ``None``."""
        epochs = self.analyzers.get(analyzer, ())
        if not epochs:
            return None
        return min(epochs, key=lambda e: (abs(e - epoch), e))


def _checkpoint_count(run: str, storage_options: Options = None) -> int | None:
    try:
        manager = CheckpointManager(join(run, CHECKPOINTS_DIR), read_only=True,
                                    storage_options=storage_options)
        return len(manager.epochs())
    except (OSError, EpochstoreError, ValueError):
        return None


def _target(run: str) -> str:
    """``run`` as the commands a message suggests take it (a URL with its options)."""
    return f"{run} --storage-options JSON" if is_url(run) else run


def _status(run: str, analyzers: Mapping[str, Sequence[int]], epochs: Sequence[int],
            checkpoints: int | None) -> tuple[Status, str]:
    name = Path(run).name or run
    if not analyzers:
        if checkpoints:
            return "empty", (
                f"{name}: {checkpoints} checkpoints, no artifacts yet. Run `epochstore analyze "
                f"{_target(run)}`: epochs appear here as they are written, no restart needed."
            )
        return "empty", (
            f"{name}: no checkpoints and no artifacts yet. Train it (`epochstore train "
            f"{_target(run)}`) and analyse it (`epochstore analyze`); this page picks them up."
        )
    counts = {len(e) for e in analyzers.values()}
    behind = checkpoints is not None and len(epochs) < checkpoints
    span = f"epochs {epochs[0]}..{epochs[-1]}" if epochs else "no epochs"
    if behind or len(counts) > 1 or not epochs:
        done = min(counts) if counts else 0
        # Without checkpoint records (e.g. artifacts copied alone), count the epochs seen.
        total, what = (checkpoints, "checkpoints") if checkpoints else (len(epochs), "epochs")
        return "analysing", (
            f"{name}: analysis in progress, {done} of {total} {what} analysed by every "
            f"analyzer ({span}). New epochs appear here as they are written."
        )
    return "complete", f"{name}: {len(epochs)} epochs ({span}), {len(analyzers)} analyzers."


def _family(run: str, storage_options: Options = None) -> str | None:
    if not is_url(run) and not Path(run, VARIANT_FILE).is_file():
        return None
    try:
        return read_variant(run, storage_options=storage_options).family
    except (OSError, EpochstoreError):
        return None


def _picks(views: Sequence[View], fields: Mapping[str, Mapping[str, StoredField]]
           ) -> dict[str, int]:
    """Each picked dim and its size: the smallest of the fields of the views that pick it."""
    sizes: dict[str, int] = {}
    for view in views:
        for dim in view.picks:
            for analyzer in view.analyzers:
                for spec in fields.get(analyzer, {}).values():
                    if dim in spec.dims:
                        size = spec.shape[spec.dims.index(dim)]
                        sizes[dim] = min(size, sizes.get(dim, size))
    return sizes


def warm_up() -> float:
    """Pay a process's one-time drawing costs now, and return how long they took (seconds).

    The first figure a process draws costs ~0.4-0.8 s more than the next ones: xarray imports
    ``dask.array`` (and, through it, part of SciPy) the first time it wraps data, and plotly
    loads one validator per trace and layout property the first time it meets it. Doing both
    here, at server start (:func:`~epochstore.dashboard.app.create_app` runs it in a background
    thread while the browser loads the page), keeps them out of the first panels a user waits
    for. Draws one figure of each trace kind the generic views use; reads no run.
    """
    from epochstore.figures import epoch_line_shapes, figure

    started = time.perf_counter()
    epochs = np.arange(3, dtype=np.int64)
    data = xr.Dataset({"v": ("epoch", np.zeros(3))}, coords={"epoch": epochs})
    z = np.zeros((2, 2), dtype=np.float32)
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "x": epochs, "y": data["v"].values, "mode": "lines+markers",
         "name": "v", "line": {"color": "#1f77b4", "shape": "hv"}, "customdata": epochs,
         "marker": {"color": epochs, "colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0,
                    "size": 8, "symbol": "circle-open", "line": {"width": 2},
                    "colorbar": {"title": {"text": "v"}}},
         "showlegend": False, "hovertemplate": "%{x}<extra></extra>", "xaxis": "x",
         "yaxis": "y"},
        {"type": "heatmap", "z": z, "x": [0, 1], "y": [0, 1], "colorscale": "RdBu",
         "zmid": 0.0, "zmin": -1.0, "zmax": 1.0, "coloraxis": "coloraxis", "name": "z",
         "hovertemplate": "%{z}<extra></extra>", "xaxis": "x2", "yaxis": "y2"},
        {"type": "heatmap", "z": z, "colorscale": "Viridis",
         "colorbar": {"title": {"text": "z"}}},
        {"type": "bar", "x": [0, 1], "y": [0.0, 1.0], "name": "b", "marker": {"color": "#777"},
         "hovertemplate": "%{y}<extra></extra>"},
    ]
    axis = {"title": {"text": "epoch"}, "type": "linear", "range": [0, 1], "domain": [0, 1],
            "anchor": "y", "matches": "x", "autorange": "reversed", "showticklabels": False,
            "visible": True, "constrain": "domain", "tickangle": 0, "scaleanchor": "x"}
    figure(traces, {
        "title": {"text": "warm-up"}, "xaxis": axis, "yaxis": {**axis, "anchor": "x"},
        "xaxis2": axis, "yaxis2": axis,
        "coloraxis": {"colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0, "cmid": 0.5},
        "shapes": epoch_line_shapes(1, rows=2),
        "annotations": [{"text": "n", "x": 0, "y": 0, "xref": "paper", "yref": "paper",
                         "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                         "font": {"size": 11, "color": "#777"}}],
        "legend": {"x": 1, "y": 1, "xanchor": "right", "yanchor": "top",
                   "bgcolor": "rgba(255,255,255,0.75)"},
        "height": PANEL_HEIGHT, "showlegend": False, "meta": {"epoch": 1},
    })
    return time.perf_counter() - started


def _message_lines(text: str) -> str:
    return text.replace(". ", ".<br>")


class DashboardService:
    """The dashboard's server side: discovery, views, lazy reads, bounded caches, figures.

    Parameters
    ----------
    root
        The directory whose runs the dashboard lists, or a URL (``"s3://bucket/runs"``).
    loader_factory
        Opens a run's :class:`~epochstore.ArtifactLoader` (tests pass one on a counting store;
        default ``ArtifactLoader(run, storage_options=storage_options)``).
    figure_cache, block_cache, series_cache
        Sizes of the LRU caches: figures, blocks of fields read for a picked slice (one chunk's
        worth each), and the per-epoch series of cross-epoch views.
    storage_options
        fsspec options for a URL root (endpoint, credentials), used for every read under it.

    Raises
    ------
    ValueError
        If ``storage_options`` are given for a local root.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        loader_factory: LoaderFactory | None = None,
        figure_cache: int = 96,
        block_cache: int = 8,
        series_cache: int = 32,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.root = os.fspath(root)
        open_filesystem(self.root, storage_options)  # refuses options for a local root
        #: fsspec options of a URL root (``None`` for a local one).
        self.storage_options = None if storage_options is None else dict(storage_options)
        self._loader_factory = loader_factory or self._default_loader
        self._loaders: LRUCache[str, ArtifactLoader] = LRUCache(64)
        self._params: LRUCache[str, dict[str, Mapping[str, JSONValue]]] = LRUCache(64)
        self._views: LRUCache[tuple[Any, ...], tuple[dict[str, View], str]] = LRUCache(64)
        self.figures: LRUCache[tuple[Any, ...], go.Figure] = LRUCache(figure_cache)
        self.blocks: LRUCache[tuple[Any, ...], xr.DataArray] = LRUCache(block_cache)
        self.series: LRUCache[tuple[Any, ...], xr.Dataset] = LRUCache(series_cache)
        self._rebuilt: LRUCache[str, VariantSummary] = LRUCache(4096)
        #: The background :func:`warm_up` started by :meth:`start_warm_up`, if any.
        self.warming: threading.Thread | None = None

    def start_warm_up(self) -> threading.Thread:
        """Run :func:`warm_up` in a daemon thread (once per service) and return the thread.

        A draw that starts before it ends waits for nothing: it pays what is left itself.
        """
        if self.warming is None:
            self.warming = threading.Thread(target=warm_up, name="epochstore-warm-up",
                                            daemon=True)
            self.warming.start()
        return self.warming

    # --- discovery (metadata only) ------------------------------------------------------------

    def _default_loader(self, run: str) -> ArtifactLoader:
        return ArtifactLoader(run, storage_options=self.storage_options)

    def runs(self) -> list[RunEntry]:
        """Every run under the root: directories with ``variant.json`` or an artifacts store."""
        return find_runs(self.root, self.storage_options)

    def loader(self, run: str) -> ArtifactLoader:
        """The run's loader (kept: it caches manifests, which never change once complete)."""
        return self._loaders.get_or_compute(run, lambda: self._loader_factory(run))

    def source(self, state: RunState) -> RunSource:
        """A source over ``state``'s run that knows its metadata (no listing) and shares the
        service's block and series caches."""
        fields = {a: state.stored_fields(a) for a in state.fields}
        return RunSource(state.run, loader=self.loader(state.run), analyzers=state.analyzers,
                         fields=fields, params=self._params.get(state.run) or {},
                         checkpoints=state.checkpoints, blocks=self.blocks, series=self.series,
                         storage_options=self.storage_options)

    def views(self, state: RunState) -> dict[str, View]:
        """The run's views by name, in display order (see :func:`epochstore.viz.run_views`)."""
        return self._run_views(state)[0]

    def _run_views(self, state: RunState) -> tuple[dict[str, View], str]:
        held = tuple(sorted(a for a, epochs in state.analyzers.items() if epochs))
        key = (state.run, state.family, held, bool(state.checkpoints))

        def build() -> tuple[dict[str, View], str]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", EpochstoreWarning)
                views, note = run_views(self.source(state), state.family,
                                        checkpoints=bool(state.checkpoints))
            for warning in caught:  # once per run and set of analyzers, not per request
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
            return {v.name: v for v in views}, note

        return self._views.get_or_compute(key, build)

    def describe(self, run: str | None) -> RunState:
        """What ``run`` has: analyzers, epochs, fields, views, status. Reads metadata only.

        Listings (one per analyzer), the analyzer groups' attributes and the checkpoint
        manifest; never a chunk. A run that cannot be read gives an ``"error"`` state.
        """
        if not run:
            return RunState()
        if not is_url(run) and not Path(run).is_dir():
            return RunState(run=run, status="error",
                            message=f"{run} does not exist (any more): pick another variant.")
        try:
            loader = self.loader(run)
            # One manifest per analyzer: its group's attributes (read afresh: a new analyzer
            # version changes which epochs are stale) and one listing of its epochs.
            names = loader.get_available_analyzers()
            current = {name: read_manifest(loader, name) for name in names}
            manifests = {name: loader.manifest(name) for name in names}
        except _RECOVERABLE as exc:
            return RunState(run=run, status="error",
                            message=f"{run} cannot be read: {exc}")
        self._params.put(run, {name: dict(m.params) for name, m in manifests.items()})
        analyzers = {name: m.epochs for name, m in manifests.items()}
        fields = {name: {f: (list(spec.dims), list(spec.shape), spec.dtype,
                             list(spec.layout.chunks)) for f, spec in m.fields.items()}
                  for name, m in manifests.items()}
        epochs = tuple(sorted({e for es in analyzers.values() for e in es}))
        stale = {name: tuple(found) for name in names
                 if (found := stale_epochs(current[name], analyzers[name]))}
        checkpoints = _checkpoint_count(run, self.storage_options)
        status, message = _status(run, analyzers, epochs, checkpoints)
        if stale:
            count = sum(len(e) for e in stale.values())
            message = (f"{message} {count} stale epochs of {', '.join(sorted(stale))} "
                       "(computed by an older analyzer version or other params): "
                       f"`epochstore analyze {_target(run)} --recompute-stale` recomputes them.")
        state = RunState(run=run, family=_family(run, self.storage_options),
                         analyzers=analyzers, fields=fields, epochs=epochs,
                         checkpoints=checkpoints, status=status, message=message)
        views, note = self._run_views(state)
        shown = [{"name": v.name, "title": v.title, "scope": v.scope, "picks": tuple(v.picks),
                  "analyzers": tuple(v.analyzers)} for v in views.values()]
        stored = {a: state.stored_fields(a) for a in state.fields}
        return RunState(run=run, family=state.family, analyzers=analyzers, fields=fields,
                        epochs=epochs, checkpoints=checkpoints, views=tuple(shown),
                        picks=_picks(list(views.values()), stored), stale=stale, status=status,
                        message=f"{message} The {note}." if note else message)

    # --- many variants --------------------------------------------------------------------------

    def variant_rows(self) -> list[dict[str, Any]]:
        """The variant table of the root: the rows of :func:`epochstore.summary.variant_table`.

        Reads each run's ``summary.json`` (one small read per run: no chunk); a run without
        one (written before summaries existed, or by ``ArtifactStore`` alone) has it computed
        from its stored data once and kept (:meth:`forget_summaries` drops those).
        """
        from epochstore.plugins import family_names
        from epochstore.summary import NO_FAMILY, read_summary, summarize, swept_params

        summaries = []
        for entry in self.runs():
            summary = (read_summary(entry.path, storage_options=self.storage_options,
                                    rebuild=False) or self._rebuilt.get(entry.path))
            if summary is None:
                summary = summarize(entry.path, storage_options=self.storage_options)
                self._rebuilt.put(entry.path, summary)
            summaries.append(summary)
        swept = swept_params(summaries)
        installed = set(family_names())  # entry-point metadata: no family is imported
        return [{"run": s.run, "family": s.family,
                 "installed": s.family == NO_FAMILY or s.family in installed,
                 "analyzers": sorted(s.analyzers),
                 "swept": {k: s.params.get(k) for k in swept[s.family]},
                 "final_metrics": dict(s.final_metrics), "checkpoints": s.checkpoints,
                 "last_epoch": s.last_epoch, "analysed": s.analysed, "stale": s.stale,
                 "events": dict(s.events), "finished": s.finished} for s in summaries]

    def forget_summaries(self) -> None:
        """Drop the summaries computed for runs without ``summary.json`` (on a page load)."""
        self._rebuilt.clear()

    def peer_sources(self, runs: Sequence[str],
                     rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        """The scalar series ``runs`` can be compared by: ``("metrics", name)`` for each final
        metric in ``rows``, then ``(analyzer, field)`` for each scalar field (manifests only)."""
        metrics = sorted({k for r in rows if r["run"] in runs for k in r["final_metrics"]})
        found: dict[tuple[str, str], None] = {}
        seen: set[str] = set()
        for row in rows:
            if row["run"] not in runs:
                continue
            loader = self.loader(str(row["run"]))
            for analyzer in row.get("analyzers", ()):
                if analyzer in seen:  # a family's runs share their analyzers' fields
                    continue
                try:
                    fields = loader.manifest(analyzer).fields
                except _RECOVERABLE:
                    continue
                if fields:
                    seen.add(analyzer)
                for name, spec in fields.items():
                    if not spec.dims:
                        found[(analyzer, name)] = None
        return [("metrics", m) for m in metrics] + sorted(found)

    def peer_series(self, runs: Sequence[str], source: str, series: str,
                    params: Mapping[str, Sequence[Any]]) -> tuple[xr.DataArray,
                                                                    dict[str, list[int]]]:
        """One scalar series of ``runs`` aligned by epoch, and each run's stale epochs of it.

        The same array as :func:`epochstore.summary.peer_series`, read through the service's
        sources: each run's series is read once and then extended by new epochs alone.

        Parameters
        ----------
        runs
            The runs to compare.
        source, series
            ``"metrics"`` and a checkpoint metric, or an analyzer and its scalar field.
        params
            The coordinates along ``run``: each swept parameter's value per run.
        """
        columns: list[xr.DataArray | None] = []
        stale: dict[str, list[int]] = {}
        for run in runs:
            state = RunState(run=run, checkpoints=_checkpoint_count(run, self.storage_options))
            source_ = RunSource(run, loader=self.loader(run), checkpoints=state.checkpoints,
                                blocks=self.blocks, series=self.series,
                                storage_options=self.storage_options)
            data: xr.Dataset | None
            if source == "metrics":
                data = source_.checkpoint_metrics()
            elif source in source_.analyzers():
                data = source_.load_series(source, [series])
                found = stale_epochs(read_manifest(source_.loader, source),
                                     source_.analyzers()[source])
                if found:
                    stale[run] = sorted(found)
            else:
                data = None
            columns.append(None if data is None or series not in data else data[series])
        epochs = sorted({int(e) for c in columns if c is not None for e in c["epoch"].values})
        index = {e: i for i, e in enumerate(epochs)}
        values = np.full((len(runs), len(epochs)), np.nan)
        for row, column in enumerate(columns):
            if column is not None:
                for epoch, value in zip(column["epoch"].values, column.values, strict=True):
                    values[row, index[int(epoch)]] = value
        coords: dict[str, Any] = {"run": list(runs), "epoch": epochs}
        coords.update({k: ("run", list(v)) for k, v in params.items()})
        name = f"{source}.{series}"
        return xr.DataArray(values, dims=("run", "epoch"), coords=coords, name=name), stale

    # --- figures --------------------------------------------------------------------------------

    def figure(self, state: RunState, name: str, epoch: int | None,
               selection: Mapping[str, int] | None = None, *,
               nearest: bool = False) -> go.Figure:
        """One view at (or marking) ``epoch``, or a friendly message figure.

        Parameters
        ----------
        state
            The run's :meth:`describe` state.
        name
            The view's name.
        epoch
            The slider's epoch.
        selection
            The picked index of each picked dim (a dim not given: 0).
        nearest
            For a per-epoch view whose analyzers lack ``epoch``, draw their nearest epoch (the
            second variant of a side-by-side view); otherwise say that it is not analysed yet.
        """
        fig = self._figure(state, name, epoch, dict(selection or {}), nearest)
        if fig.layout.height != PANEL_HEIGHT:  # cached figures are sized once, never mutated
            fig.layout.height = PANEL_HEIGHT
        return fig

    def view_figures(self, state: RunState, names: Sequence[str], epoch: int | None,
                selection: Mapping[str, int] | None = None, *,
                nearest: bool = False) -> list[go.Figure]:
        """:meth:`figure` of each of ``names``, in order."""
        return [self.figure(state, n, epoch, selection, nearest=nearest) for n in names]

    def _resolve(self, state: RunState, view: View, epoch: int | None,
                 nearest: bool) -> tuple[int | None, str]:
        """The epoch a per-epoch view draws, and a title note; ``None`` if it has none."""
        common = set(state.epochs)
        for analyzer in view.analyzers:
            common &= set(state.analyzers.get(analyzer, ()))
        if epoch is None:
            return (max(common), "") if nearest and common else (None, "")
        if epoch in common:
            return epoch, ""
        if nearest and common:
            found = min(common, key=lambda e: (abs(e - epoch), e))
            return found, f" (nearest to {epoch})"
        return None, ""

    def _figure(self, state: RunState, name: str, epoch: int | None,
                selection: dict[str, int], nearest: bool) -> go.Figure:
        if state.status in ("none", "error"):
            return message_figure(_message_lines(state.message))
        view = self.views(state).get(name)
        if view is None:
            return message_figure(f"This run has no view {name!r}.")
        picked = {d: int(selection.get(d, 0)) for d in view.picks}
        if view.scope == "across":
            key: tuple[Any, ...] = (
                state.run, name, epoch, tuple(sorted(picked.items())), state.checkpoints,
                tuple(tuple(state.analyzers.get(a, ())) for a in view.analyzers))
            try:
                return self.figures.get_or_compute(
                    key, lambda: view.render(self.source(state), epoch, picked))
            except _RECOVERABLE as exc:
                return message_figure(f"Cannot draw this panel: {exc}", title=view.title)
        if epoch is None and not nearest:
            return message_figure("No epoch analysed yet.", title=view.title)
        used, note = self._resolve(state, view, epoch, nearest)
        if used is None:
            return message_figure(
                f"Epoch {epoch} of {', '.join(map(repr, view.analyzers))} is not analysed "
                "yet:<br>it appears here when the pipeline writes it.", title=view.title)

        def draw() -> go.Figure:
            fig = view.render(self.source(state), used, picked)
            if note:
                fig.layout.title.text = f"{fig.layout.title.text}{note}"
            return fig

        try:
            key = (state.run, name, used, note, tuple(sorted(picked.items())))
            return self.figures.get_or_compute(key, draw)
        except _RECOVERABLE as exc:
            return message_figure(
                f"Cannot show epoch {used} of {', '.join(map(repr, view.analyzers))}:<br>{exc}",
                title=view.title)
