"""What the dashboard computes, as plain functions of plain values: testable without a browser.

:class:`DashboardService` answers the three questions the web app asks:

- :meth:`~DashboardService.describe`: what does this run have? Analyzers, epochs, sizes and a
  friendly status, from metadata only (listings and manifests; no chunk is read).
- :meth:`~DashboardService.epoch_figures`: the per-epoch panels at one epoch. Only that epoch
  is read, and only what each panel shows: the chunk that holds the chosen neuron, the small
  per-epoch fields. Figures of recently viewed epochs are kept in a bounded LRU cache.
- :meth:`~DashboardService.cross_figures`: the cross-epoch panels with the epoch marked. The
  few values per epoch they draw are read once and kept; moving the slider redraws the marker
  without reading, and epochs written later are read on their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from epochstore.checkpoints import CheckpointManager
from epochstore.dashboard.cache import LRUCache
from epochstore.dashboard.runs import RunEntry, find_runs
from epochstore.errors import EpochstoreError
from epochstore.location import join
from epochstore.run import CHECKPOINTS_DIR
from epochstore.store import ArtifactLoader
from epochstore.viz import (
    checkpoint_metrics,
    message_figure,
    render_accuracy_curves,
    render_attention_pattern,
    render_dominant_frequencies,
    render_key_frequency_norms,
    render_loss_curves,
    render_neuron_dominant_frequency,
    render_neuron_freq_matrix,
    render_neuron_grid,
    render_neuron_heatmap,
    render_progress_measures,
)
from epochstore.viz.curves import ACCURACY_FIELDS, LOSS_FIELDS

__all__ = [
    "CROSS_PANELS",
    "EPOCH_PANELS",
    "GRID_SIZE",
    "PANEL_HEIGHT",
    "PANEL_TITLES",
    "PROGRESS_FIELDS",
    "DashboardService",
    "RunState",
    "Status",
]

#: Per-epoch panels and the analyzer each needs.
EPOCH_PANELS: Final[Mapping[str, str]] = {
    "dominant": "dominant_frequencies",
    "heatmap": "neuron_activations",
    "freq_matrix": "neuron_freq_norm",
    "grid": "neuron_activations",
    "attention": "attention_patterns",
}
#: Cross-epoch panels and the analyzer each prefers.
CROSS_PANELS: Final[Mapping[str, str]] = {
    "loss": "training_metrics",
    "accuracy": "training_metrics",
    "progress": "progress_measures",
    "key_norms": "dominant_frequencies",
    "neuron_freq": "neuron_freq_norm",
}
#: Titles of the panels' placeholder figures.
PANEL_TITLES: Final[Mapping[str, str]] = {
    "dominant": "Dominant frequencies",
    "heatmap": "Neuron activation",
    "freq_matrix": "Neuron-frequency clusters",
    "grid": "Neuron grid",
    "attention": "Attention patterns",
    "loss": "Loss",
    "accuracy": "Accuracy",
    "progress": "Progress measures",
    "key_norms": "Key-frequency norms",
    "neuron_freq": "Neuron's dominant frequency",
}
#: Height in pixels of every panel (the app sizes its graphs alike, so rows line up).
PANEL_HEIGHT: Final = 440

#: The progress measures drawn (``specialised_neurons`` is left to the neuron panels).
PROGRESS_FIELDS: Final = ("restricted_loss", "excluded_loss", "gini_embedding",
                          "gini_neuron_logit", "sum_squared_weights")
#: Neurons in the neuron grid: a block that lies inside the chunk of the chosen neuron.
GRID_SIZE: Final = 16

Status = Literal["none", "empty", "analysing", "complete", "error"]
LoaderFactory = Callable[[str], ArtifactLoader]

_RECOVERABLE = (EpochstoreError, KeyError, IndexError, ValueError, OSError)


@dataclass(frozen=True)
class RunState:
    """What a run has, from metadata only; JSON-able for the browser (``dcc.Store``).

    Attributes
    ----------
    run
        The run directory ("" for no run).
    analyzers
        Each analyzer's committed epochs.
    fields
        Each analyzer's output fields (from its manifest).
    epochs
        The slider's epochs: every epoch any analyzer has, sorted.
    checkpoints
        How many committed checkpoints the run has (``None``: unknown).
    neurons
        ``d_mlp`` (from the ``neuron_activations`` manifest), if known.
    neuron_chunk
        The chunk length along ``neuron`` of the activations, if known.
    key_frequencies
        The key frequencies stored by ``progress_measures``, if any.
    status
        ``"none"`` (no run picked), ``"empty"`` (no artifacts yet), ``"analysing"`` (some
        checkpoints or analyzers not analysed yet), ``"complete"`` or ``"error"``.
    message
        One friendly sentence saying so, and what to do.
    """

    run: str = ""
    analyzers: Mapping[str, Sequence[int]] = field(default_factory=dict)
    fields: Mapping[str, Sequence[str]] = field(default_factory=dict)
    epochs: Sequence[int] = ()
    checkpoints: int | None = None
    neurons: int | None = None
    neuron_chunk: int | None = None
    key_frequencies: Sequence[int] | None = None
    status: Status = "none"
    message: str = "Pick a variant."

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (for ``dcc.Store``)."""
        data = asdict(self)
        data["analyzers"] = {k: list(v) for k, v in self.analyzers.items()}
        data["fields"] = {k: list(v) for k, v in self.fields.items()}
        data["epochs"] = list(self.epochs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunState:
        """Inverse of :meth:`to_dict`; ``None`` or ``{}`` is "no run picked"."""
        if not data:
            return cls()
        return cls(
            run=str(data.get("run", "")),
            analyzers={str(k): tuple(int(e) for e in v)
                       for k, v in dict(data.get("analyzers", {})).items()},
            fields={str(k): tuple(str(f) for f in v)
                    for k, v in dict(data.get("fields", {})).items()},
            epochs=tuple(int(e) for e in data.get("epochs", ())),
            checkpoints=data.get("checkpoints"),
            neurons=data.get("neurons"),
            neuron_chunk=data.get("neuron_chunk"),
            key_frequencies=data.get("key_frequencies"),
            status=data.get("status", "none"),
            message=str(data.get("message", "")),
        )

    def nearest_epoch(self, analyzer: str, epoch: int) -> int | None:
        """The epoch of ``analyzer`` closest to ``epoch`` (ties: the earlier), or ``None``."""
        epochs = self.analyzers.get(analyzer, ())
        if not epochs:
            return None
        return min(epochs, key=lambda e: (abs(e - epoch), e))


def _default_loader(run: str) -> ArtifactLoader:
    return ArtifactLoader(run)


def _checkpoint_count(run: str) -> int | None:
    try:
        return len(CheckpointManager(join(run, CHECKPOINTS_DIR), read_only=True).epochs())
    except (OSError, EpochstoreError, ValueError):
        return None


def _status(run: str, analyzers: Mapping[str, Sequence[int]], epochs: Sequence[int],
            checkpoints: int | None) -> tuple[Status, str]:
    name = Path(run).name or run
    if not analyzers:
        if checkpoints:
            return "empty", (
                f"{name}: {checkpoints} checkpoints, no artifacts yet. Run `epochstore analyze "
                f"{run}`: epochs appear here as they are written, no restart needed."
            )
        return "empty", (
            f"{name}: no checkpoints and no artifacts yet. Train it (`epochstore train {run}`) "
            "and analyse it (`epochstore analyze`); this page picks them up."
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


def _missing(panel: str, analyzer: str, state: RunState) -> go.Figure:
    have = ", ".join(sorted(state.analyzers)) or "none"
    return message_figure(
        f"No {analyzer!r} artifacts in this run (it has: {have}).<br>"
        f"Compute them: epochstore analyze {state.run} --analyzers {analyzer}",
        title=PANEL_TITLES[panel],
    )


class DashboardService:
    """The dashboard's server side: discovery, lazy reads, bounded caches, figures.

    Parameters
    ----------
    root
        The directory whose runs the dashboard lists.
    loader_factory
        Opens a run's :class:`~epochstore.ArtifactLoader` (tests pass one on a counting store).
    figure_cache, block_cache, series_cache
        Sizes of the LRU caches: per-epoch figures, blocks of neuron activations (one chunk's
        worth each), and the small per-epoch series of cross-epoch panels.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        loader_factory: LoaderFactory = _default_loader,
        figure_cache: int = 96,
        block_cache: int = 8,
        series_cache: int = 32,
    ) -> None:
        self.root = os.fspath(root)
        self._loader_factory = loader_factory
        self._loaders: LRUCache[str, ArtifactLoader] = LRUCache(64)
        self.figures: LRUCache[tuple[Any, ...], go.Figure] = LRUCache(figure_cache)
        self.blocks: LRUCache[tuple[Any, ...], xr.Dataset] = LRUCache(block_cache)
        self.series: LRUCache[tuple[Any, ...], xr.Dataset] = LRUCache(series_cache)

    # --- discovery (metadata only) ------------------------------------------------------------

    def runs(self) -> list[RunEntry]:
        """Every run under the root (directories with ``variant.json``)."""
        return find_runs(self.root)

    def loader(self, run: str) -> ArtifactLoader:
        """The run's loader (kept: it caches manifests, which never change once complete)."""
        return self._loaders.get_or_compute(run, lambda: self._loader_factory(run))

    def describe(self, run: str | None) -> RunState:
        """What ``run`` has: analyzers, epochs, sizes, status. Reads metadata only.

        Listings (one per analyzer), the analyzer groups' attributes and the checkpoint
        manifest; never a chunk. A run that cannot be read gives an ``"error"`` state.
        """
        if not run:
            return RunState()
        if "://" not in run and not Path(run).is_dir():
            return RunState(run=run, status="error",
                            message=f"{run} does not exist (any more): pick another variant.")
        try:
            loader = self.loader(run)
            # One manifest per analyzer: its group's attributes and one listing of its epochs.
            manifests = {name: loader.manifest(name) for name in loader.get_available_analyzers()}
        except _RECOVERABLE as exc:
            return RunState(run=run, status="error",
                            message=f"{run} cannot be read: {exc}")
        analyzers = {name: m.epochs for name, m in manifests.items()}
        fields = {name: tuple(m.fields) for name, m in manifests.items()}
        neurons = chunk = None
        acts = manifests.get("neuron_activations")
        spec = acts.fields.get("activations") if acts is not None else None
        if spec is not None and spec.dims[:1] == ("neuron",):
            neurons, chunk = spec.shape[0], spec.layout.chunks[0]
        keys = None
        if "progress_measures" in manifests:
            stored = manifests["progress_measures"].params.get("key_frequencies")
            keys = [int(k) for k in stored] if isinstance(stored, list) else None
        epochs = tuple(sorted({e for es in analyzers.values() for e in es}))
        checkpoints = _checkpoint_count(run)
        status, message = _status(run, analyzers, epochs, checkpoints)
        return RunState(run=run, analyzers=analyzers, fields=fields, epochs=epochs,
                        checkpoints=checkpoints, neurons=neurons, neuron_chunk=chunk,
                        key_frequencies=keys, status=status, message=message)

    # --- per-epoch panels -----------------------------------------------------------------------

    def _resolve(self, state: RunState, analyzer: str, epoch: int,
                 nearest: bool) -> tuple[int | None, str]:
        epochs = state.analyzers.get(analyzer, ())
        if epoch in epochs:
            return epoch, ""
        if nearest and epochs:
            found = state.nearest_epoch(analyzer, epoch)
            return found, f" (nearest to {epoch})"
        return None, ""

    def _block_range(self, state: RunState, neuron: int) -> tuple[int, int]:
        """The grid block of ``neuron``: up to 16 neurons, inside the chunk that holds it."""
        count = state.neurons or 0
        if not 0 <= neuron < count:
            raise IndexError(f"neuron {neuron} is out of range: this run has neurons "
                             f"0..{count - 1}")
        chunk = max(1, state.neuron_chunk or count)
        chunk_start = neuron - neuron % chunk
        start = chunk_start + (neuron - chunk_start) // GRID_SIZE * GRID_SIZE
        return start, min(start + GRID_SIZE, chunk_start + chunk, count)

    def _block(self, state: RunState, epoch: int, neuron: int) -> xr.Dataset:
        """The activations of the grid block holding ``neuron``: one read, of one chunk."""
        start, stop = self._block_range(state, neuron)

        def load() -> xr.Dataset:
            ds = self.loader(state.run).load_epoch("neuron_activations", epoch)
            block = ds[["activations"]].isel(neuron=slice(start, stop))
            return block.assign_coords(neuron=np.arange(start, stop)).load()

        return self.blocks.get_or_compute((state.run, epoch, start, stop), load)

    def _epoch_figure(self, state: RunState, panel: str, epoch: int, neuron: int,
                      note: str) -> go.Figure:
        analyzer = EPOCH_PANELS[panel]
        if panel == "heatmap":
            data = self._block(state, epoch, neuron)
            return render_neuron_heatmap(
                data, epoch, neuron=neuron, title=f"Neuron {neuron} activation, epoch {epoch}{note}"
            )
        if panel == "grid":
            data = self._block(state, epoch, neuron)
            shown = data["neuron"].values
            return render_neuron_grid(
                data, epoch,
                title=f"Neurons {shown[0]}-{shown[-1]} over (a, b), epoch {epoch}{note}",
            )
        data = self.loader(state.run).load_epoch(analyzer, epoch)
        if panel == "dominant":
            return render_dominant_frequencies(
                data, epoch, title=f"Embedding Fourier components, epoch {epoch}{note}"
            )
        if panel == "freq_matrix":
            fig = render_neuron_freq_matrix(data, epoch)
            if note:
                fig.layout.title.text += note
            return fig
        return render_attention_pattern(data, epoch)

    def _cache_key(self, state: RunState, panel: str, epoch: int, neuron: int,
                   note: str) -> tuple[Any, ...]:
        # The note ("nearest to ...") is in the title, so it is part of the figure's identity.
        if panel == "heatmap":
            return (state.run, panel, epoch, note, neuron)
        if panel == "grid":
            return (state.run, panel, epoch, note, self._block_range(state, neuron))
        return (state.run, panel, epoch, note)

    def epoch_figure(self, state: RunState, panel: str, epoch: int | None, neuron: int = 0,
                     *, nearest: bool = False) -> go.Figure:
        """One per-epoch panel at ``epoch``, or a friendly message figure.

        Parameters
        ----------
        state
            The run's :meth:`describe` state.
        panel
            One of :data:`EPOCH_PANELS`.
        epoch
            The slider's epoch.
        neuron
            The chosen neuron (heatmap; the grid shows the block of 16 around it).
        nearest
            Use the analyzer's nearest epoch when it lacks ``epoch`` (the second variant of a
            side-by-side view); otherwise say that the epoch is not analysed yet.
        """
        fig = self._epoch_panel(state, panel, epoch, neuron, nearest)
        if fig.layout.height != PANEL_HEIGHT:  # cached figures are sized once, never mutated
            fig.layout.height = PANEL_HEIGHT
        return fig

    def _epoch_panel(self, state: RunState, panel: str, epoch: int | None, neuron: int,
                     nearest: bool) -> go.Figure:
        analyzer = EPOCH_PANELS[panel]
        title = PANEL_TITLES[panel]
        if state.status in ("none", "error") or not state.analyzers:
            return message_figure(state.message.replace(". ", ".<br>"), title=title)
        if analyzer not in state.analyzers:
            return _missing(panel, analyzer, state)
        if epoch is None and nearest and state.analyzers[analyzer]:
            epoch = state.analyzers[analyzer][-1]
        if epoch is None:
            return message_figure("No epoch analysed yet.", title=title)
        used, note = self._resolve(state, analyzer, int(epoch), nearest)
        if used is None:
            return message_figure(
                f"Epoch {epoch} of {analyzer!r} is not analysed yet:<br>it appears here when "
                "the pipeline writes it.", title=title)
        try:
            key = self._cache_key(state, panel, used, neuron, note)
            return self.figures.get_or_compute(
                key, lambda: self._epoch_figure(state, panel, used, neuron, note))
        except _RECOVERABLE as exc:
            return message_figure(f"Cannot show epoch {used} of {analyzer!r}:<br>{exc}",
                                  title=title)

    def epoch_figures(self, state: RunState, epoch: int | None, neuron: int = 0, *,
                      nearest: bool = False,
                      panels: Sequence[str] | None = None) -> dict[str, go.Figure]:
        """Every per-epoch panel (or ``panels``) at ``epoch``: see :meth:`epoch_figure`."""
        chosen = list(EPOCH_PANELS) if panels is None else list(panels)
        return {p: self.epoch_figure(state, p, epoch, neuron, nearest=nearest) for p in chosen}

    # --- cross-epoch panels ---------------------------------------------------------------------

    def _series(self, state: RunState, analyzer: str, fields: Sequence[str],
                neuron: int | None = None) -> xr.Dataset:
        """The drawn fields of every epoch of ``analyzer``, read once; new epochs read alone.

        With ``neuron``, only that neuron's entries (one chunk per epoch and field).
        """
        key = (state.run, analyzer, tuple(fields), neuron)
        want = list(state.analyzers.get(analyzer, ()))
        have = self.series.get(key)
        have_epochs = set() if have is None else {int(e) for e in have["epoch"].values}
        if have is not None and have_epochs == set(want):
            return have
        missing = [e for e in want if e not in have_epochs]
        parts = []
        if have is not None and have_epochs & set(want):
            parts.append(have.sel(epoch=[e for e in want if e in have_epochs]))
        if missing:
            lazy = self.loader(state.run).load_epochs(analyzer, missing, chunks=None)
            lazy = lazy[list(fields)]
            if neuron is not None:
                lazy = lazy.isel(neuron=[neuron]).assign_coords(neuron=[neuron])
            parts.append(lazy.load())
        result = parts[0] if len(parts) == 1 else xr.concat(parts, "epoch").sortby("epoch")
        self.series.put(key, result)
        return result

    def _metrics(self, state: RunState, panel: str) -> xr.Dataset | None:
        """Loss or accuracy per epoch: ``training_metrics`` if analysed, else checkpoint records.

        Only the drawn fields are read: the standard ones (``train_loss``, ``test_loss`` or the
        accuracies) when present, else every metric whose name has ``loss`` (``acc``) in it.
        """
        preferred, word = (LOSS_FIELDS, "loss") if panel == "loss" else (ACCURACY_FIELDS, "acc")

        def pick(names: Sequence[str]) -> list[str]:
            return [f for f in preferred if f in names] or sorted(f for f in names if word in f)

        if state.analyzers.get("training_metrics"):
            stored = list(state.fields.get("training_metrics", ()))
            return self._series(state, "training_metrics", pick(stored))
        key = (state.run, "checkpoints", state.checkpoints)
        records = self.series.get(key)
        if records is None:
            records = checkpoint_metrics(state.run)
            if records is None:
                return None
            self.series.put(key, records)
        fields = pick([str(f) for f in records.data_vars])
        return records[fields] if fields else None

    def _cross_figure(self, state: RunState, panel: str, epoch: int | None,
                      neuron: int) -> go.Figure:
        analyzer = CROSS_PANELS[panel]
        if panel in ("loss", "accuracy"):
            data = self._metrics(state, panel)
            if data is None:
                return message_figure(f"No {panel} recorded yet: no checkpoint records it<br>"
                                      "and training_metrics is not analysed.",
                                      title=PANEL_TITLES[panel])
            fields = [str(f) for f in data.data_vars]
            if panel == "loss":
                fig = render_loss_curves(data, epoch, fields=fields)
            else:
                fig = render_accuracy_curves(data, epoch, fields=fields)
            if data.attrs.get("source") == "checkpoints":
                fig.layout.title.text += ", from checkpoint records"
            return fig
        if not state.analyzers.get(analyzer):
            return _missing(panel, analyzer, state)
        if panel == "progress":
            stored = state.fields.get(analyzer, ())
            present = [f for f in PROGRESS_FIELDS if f in stored]
            return render_progress_measures(self._series(state, analyzer, present), epoch)
        if panel == "key_norms":
            data = self._series(state, analyzer, ["frequency_norms"])
            keys = state.key_frequencies
            return render_key_frequency_norms(data, epoch, key_frequencies=keys)
        data = self._series(state, analyzer, ["dominant_frequency", "dominant_fraction"],
                            neuron=neuron)
        return render_neuron_dominant_frequency(data, epoch, neuron=neuron)

    def cross_figure(self, state: RunState, panel: str, epoch: int | None,
                     neuron: int = 0) -> go.Figure:
        """One cross-epoch panel with ``epoch`` marked, or a friendly message figure."""
        fig = self._cross_panel(state, panel, epoch, neuron)
        fig.layout.height = PANEL_HEIGHT
        return fig

    def _cross_panel(self, state: RunState, panel: str, epoch: int | None,
                     neuron: int) -> go.Figure:
        title = PANEL_TITLES[panel]
        if state.status in ("none", "error"):
            return message_figure(state.message.replace(". ", ".<br>"), title=title)
        try:
            return self._cross_figure(state, panel, epoch, neuron)
        except _RECOVERABLE as exc:
            return message_figure(f"Cannot draw this panel: {exc}", title=title)

    def cross_figures(self, state: RunState, epoch: int | None, neuron: int = 0, *,
                      panels: Sequence[str] | None = None) -> dict[str, go.Figure]:
        """Every cross-epoch panel (or ``panels``) with ``epoch`` marked."""
        chosen = list(CROSS_PANELS) if panels is None else list(panels)
        return {p: self.cross_figure(state, p, epoch, neuron) for p in chosen}
