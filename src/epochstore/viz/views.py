"""Views drawn from the data: every stored field gets figures from its manifest alone.

=============  =================================  ===================================
field          at the slider's epoch              across epochs
=============  =================================  ===================================
scalar         (none)                             line over epochs
1-D ``(k,)``   bar (k <= 64) or line over ``k``   heatmap epoch x ``k``
2-D ``(r,c)``  heatmap                            its L2 norm over epochs
N-D ``(n,…)``  heatmap of ``[i, 0, …, :, :]``,    the picked slice's L2 norm over epochs
               a picker on ``n``
=============  =================================  ===================================

Bool and integer fields are drawn as numbers. A figure never carries more than
:data:`MAX_CELLS` heatmap cells or :data:`MAX_POINTS` points: larger fields are drawn with a
stride along each axis, and a note in the figure says so. Titles name the analyzer, the field
and the epoch (``probe_vector / spectrum, epoch 300``).

:func:`~epochstore.viz.run_views` puts a run's views together: the views its family (or its
analyzers) declare, default views of every analyzer no declared view reads, and loss/accuracy
curves from the checkpoint records.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
import xarray as xr

from epochstore.errors import EpochstoreWarning, FamilyNotFoundError
from epochstore.figures import MARKER_COLOR, figure, line_figure, message_figure
from epochstore.interface import DeclaresViews, Scope, StoredField, View, ViewSource
from epochstore.plugins import get_family

__all__ = [
    "MAX_CELLS",
    "MAX_POINTS",
    "FieldView",
    "MetricCurves",
    "declared_views",
    "default_views",
    "run_views",
]

#: Most heatmap cells one figure carries (float32: about 1 MB of JSON at most).
MAX_CELLS: Final = 256 * 256
#: Most points of one line or bar chart.
MAX_POINTS: Final = 4096
#: Bars up to this many values, a line beyond.
MAX_BARS: Final = 64

ViewKind = Literal["curve", "values", "epoch_heatmap", "heatmap", "norm"]


def _strides(shape: Sequence[int], budget: int) -> tuple[int, ...]:
    """One stride per axis so that the strided array has at most ``budget`` entries."""
    strides = [1] * len(shape)
    while math.prod(-(-n // s) for n, s in zip(shape, strides, strict=True)) > budget:
        # Thin the axis that is longest after striding: keeps the picture's aspect.
        axis = max(range(len(shape)), key=lambda i: -(-shape[i] // strides[i]))
        strides[axis] += 1
    return tuple(strides)


def _note(shape: Sequence[int], strides: Sequence[int]) -> str:
    if all(s == 1 for s in strides):
        return ""
    kept = "x".join(str(-(-n // s)) for n, s in zip(shape, strides, strict=True))
    every = ", ".join(f"every {s}" for s in strides)
    return f"downsampled to {kept} of {'x'.join(map(str, shape))} ({every} along each axis)"


def _thin(array: xr.DataArray, budget: int) -> tuple[xr.DataArray, str]:
    """``array`` strided to at most ``budget`` entries (lazily: before reading), and a note."""
    strides = _strides(array.shape, budget)
    note = _note(array.shape, strides)
    if note:
        # Label the kept positions first, so that axes show the original indices.
        unlabelled = {d: np.arange(n) for d, n in array.sizes.items() if d not in array.coords}
        array = array.assign_coords(unlabelled).isel(
            {d: slice(None, None, s) for d, s in zip(array.dims, strides, strict=True)})
    return array, note


def _numbers(array: xr.DataArray) -> npt.NDArray[Any]:
    """Read ``array`` as numbers: float32 stays, bool and ints become float64."""
    values = np.asarray(array.values)
    return values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)


def _positions(array: xr.DataArray, dim: str) -> npt.NDArray[Any]:
    if dim in array.coords:
        return np.asarray(array.coords[dim].values)
    return np.arange(int(array.sizes[dim]))


def _note_annotation(note: str) -> list[dict[str, Any]]:
    if not note:
        return []
    return [{"text": note, "x": 0, "y": -0.16, "xref": "paper", "yref": "paper",
             "xanchor": "left", "showarrow": False, "font": {"size": 11, "color": "#777"}}]


def _colors(z: npt.NDArray[Any]) -> dict[str, Any]:
    finite = z[np.isfinite(z)] if z.size else z
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    if low < 0 < high:  # signed data: white is zero
        top = max(-low, high)
        return {"colorscale": "RdBu", "zmid": 0.0, "zmin": -top, "zmax": top}
    return {"colorscale": "Viridis"}


@dataclass(frozen=True)
class FieldView:
    """A default view of one stored field, chosen by its number of dims.

    Parameters
    ----------
    field
        The field, as the analyzer's manifest records it.
    kind
        ``"curve"`` (scalar over epochs), ``"values"`` (1-D at the epoch), ``"epoch_heatmap"``
        (1-D, epoch x dim), ``"heatmap"`` (2-D, or a slice of N-D, at the epoch), ``"norm"``
        (2-D or a slice of N-D: L2 norm over epochs).
    """

    field: StoredField
    kind: ViewKind

    @property
    def name(self) -> str:
        """``analyzer__field__kind``."""
        return f"{self.field.analyzer}__{self.field.name}__{self.kind}"

    @property
    def label(self) -> str:
        """``analyzer / field``."""
        return f"{self.field.analyzer} / {self.field.name}"

    @property
    def title(self) -> str:
        """What the view shows, without the epoch."""
        suffix = {"curve": "", "values": "", "heatmap": "",
                  "epoch_heatmap": " over epochs", "norm": ": norm over epochs"}[self.kind]
        return f"{self.label}{suffix}"

    @property
    def analyzers(self) -> tuple[str, ...]:
        """The field's analyzer."""
        return (self.field.analyzer,)

    @property
    def scope(self) -> Scope:
        """``"epoch"`` or ``"across"``."""
        return "epoch" if self.kind in ("values", "heatmap") else "across"

    @property
    def picks(self) -> tuple[str, ...]:
        """The leading dim of a field of 3 or more dims."""
        return self.field.dims[:1] if len(self.field.dims) >= 3 else ()

    def render(self, source: ViewSource, epoch: int | None,
               selection: Mapping[str, int]) -> go.Figure:
        """Draw the view (see the table in :mod:`epochstore.viz.views`)."""
        if self.scope == "epoch" and epoch is None:
            return message_figure("No epoch analysed yet.", title=self.title)
        if self.kind == "curve":
            return self._curve(source, epoch)
        if self.kind == "values":
            return self._values(source, int(epoch))  # type: ignore[arg-type]
        if self.kind == "epoch_heatmap":
            return self._epoch_heatmap(source, epoch)
        if self.kind == "heatmap":
            return self._heatmap(source, int(epoch), selection)  # type: ignore[arg-type]
        return self._norm(source, epoch, selection)

    # --- the kinds ------------------------------------------------------------------------------

    def _curve(self, source: ViewSource, epoch: int | None) -> go.Figure:
        data = source.load_series(self.field.analyzer, [self.field.name])
        return line_figure(data, epoch, [self.field.name], title=self.title,
                           yaxis_title=self.field.name)

    def _values(self, source: ViewSource, epoch: int) -> go.Figure:
        array = source.load_epoch(self.field.analyzer, epoch)[self.field.name]
        array, note = _thin(array, MAX_POINTS)
        dim = str(array.dims[0])
        x, y = _positions(array, dim), _numbers(array)
        if y.size <= MAX_BARS:
            trace: dict[str, Any] = {"type": "bar", "x": x, "y": y}
        else:
            trace = {"type": "scatter", "mode": "lines", "x": x, "y": y}
        trace["hovertemplate"] = f"{dim} %{{x}}<br>%{{y:.4g}}<extra></extra>"
        return figure([trace], {
            "title": {"text": f"{self.label}, epoch {epoch}"},
            "xaxis": {"title": {"text": dim}}, "yaxis": {"title": {"text": self.field.name}},
            "annotations": _note_annotation(note),
            "meta": {"epoch": epoch, "epochstore_note": note},
        })

    def _epoch_heatmap(self, source: ViewSource, epoch: int | None) -> go.Figure:
        data = source.load_series(self.field.analyzer, [self.field.name])[self.field.name]
        dim = str(data.dims[1])
        data, note = _thin(data, MAX_CELLS)
        z = _numbers(data)
        epochs = np.asarray(data["epoch"].values, dtype=np.int64)
        heatmap = {"type": "heatmap", "z": z, "x": _positions(data, dim), "y": epochs,
                   **_colors(z),
                   "hovertemplate": f"epoch %{{y}}, {dim} %{{x}}<br>%{{z:.4g}}<extra></extra>"}
        shapes = [] if epoch is None else [{
            "type": "line", "xref": "x domain", "yref": "y", "x0": 0, "x1": 1,
            "y0": epoch, "y1": epoch, "line": {"color": MARKER_COLOR, "dash": "dash",
                                               "width": 1.5}, "name": "selected epoch"}]
        title = self.title if epoch is None else f"{self.title} (epoch {epoch})"
        return figure([heatmap], {
            "title": {"text": title}, "xaxis": {"title": {"text": dim}},
            "yaxis": {"title": {"text": "epoch"}}, "shapes": shapes,
            "annotations": _note_annotation(note),
            "meta": {"epoch": epoch, "epochstore_note": note},
        })

    def _slice(self, selection: Mapping[str, int]) -> tuple[dict[str, int], str]:
        """The index of every dim before the last two, and how the title names it."""
        dims = self.field.dims
        chosen = dict.fromkeys(dims[:-2], 0)
        if self.picks:
            chosen[self.picks[0]] = int(selection.get(self.picks[0], 0))
        where = ", ".join(f"{d} {i}" for d, i in chosen.items())
        return chosen, where

    def _heatmap(self, source: ViewSource, epoch: int,
                 selection: Mapping[str, int]) -> go.Figure:
        chosen, where = self._slice(selection)
        if self.picks:
            dim = self.picks[0]
            block = source.load_block(self.field.analyzer, epoch, self.field.name, dim,
                                      chosen[dim], 1)
            array = block.sel({dim: chosen[dim]}).isel(
                {d: i for d, i in chosen.items() if d != dim})
        else:
            array = source.load_epoch(self.field.analyzer, epoch)[self.field.name]
        array, note = _thin(array, MAX_CELLS)
        rows, cols = (str(d) for d in array.dims)
        z = _numbers(array)
        heatmap = {"type": "heatmap", "z": z, "x": _positions(array, cols),
                   "y": _positions(array, rows), **_colors(z),
                   "hovertemplate": f"{rows} %{{y}}, {cols} %{{x}}<br>%{{z:.4g}}<extra></extra>"}
        place = f", {where}" if where else ""
        return figure([heatmap], {
            "title": {"text": f"{self.label}{place}, epoch {epoch}"},
            "xaxis": {"title": {"text": cols}},
            "yaxis": {"title": {"text": rows}, "autorange": "reversed"},
            "annotations": _note_annotation(note),
            "meta": {"epoch": epoch, "selection": chosen, "epochstore_note": note},
        })

    def _norm(self, source: ViewSource, epoch: int | None,
              selection: Mapping[str, int]) -> go.Figure:
        select = {self.picks[0]: int(selection.get(self.picks[0], 0))} if self.picks else {}
        if select:
            dim, index = next(iter(select.items()))
            count = self.field.shape[0]
            if not 0 <= index < count:
                raise IndexError(f"{dim} {index} is out of range: {self.label} has "
                                 f"{dim}s 0..{count - 1}")
        data = source.load_series(self.field.analyzer, [self.field.name], select=select,
                                  norm=True)
        where = "".join(f" of {d} {i}" for d, i in select.items())
        return line_figure(data, epoch, [self.field.name],
                           title=f"{self.label}: norm{where} over epochs",
                           yaxis_title="L2 norm")


def default_views(fields: Sequence[StoredField]) -> list[View]:
    """The default views of ``fields``, in order (see the table in the module docstring)."""
    kinds: dict[int, tuple[ViewKind, ...]] = {0: ("curve",), 1: ("values", "epoch_heatmap"),
                                              2: ("heatmap", "norm")}
    views: list[View] = []
    for spec in fields:
        for kind in kinds.get(len(spec.dims), ("heatmap", "norm")):
            views.append(FieldView(spec, kind))
    return views


@dataclass(frozen=True)
class MetricCurves:
    """Loss (or accuracy) over epochs from the checkpoint records: for any run with checkpoints.

    Parameters
    ----------
    name
        ``"loss"`` draws every recorded metric whose name holds ``loss``; ``"accuracy"`` those
        holding ``acc``.
    """

    name: Literal["loss", "accuracy"]
    analyzers: tuple[str, ...] = ()
    scope: Scope = "across"
    picks: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """``"Loss"`` or ``"Accuracy"``."""
        return self.name.capitalize()

    def render(self, source: ViewSource, epoch: int | None,
               selection: Mapping[str, int]) -> go.Figure:
        """Curves of the matching metrics, from the checkpoint manifest, epoch marked."""
        records = source.checkpoint_metrics()
        word = "loss" if self.name == "loss" else "acc"
        fields = [] if records is None else sorted(
            str(f) for f in records.data_vars if word in str(f))
        if records is None or not fields:
            return message_figure(f"No {self.name} recorded yet: no checkpoint records it.",
                                  title=self.title)
        return line_figure(records, epoch, fields, title=f"{self.title}, from checkpoint records",
                           yaxis_title=self.name, log_y=self.name == "loss",
                           yrange=None if self.name == "loss" else (-0.02, 1.02))


def declared_views(owner: object) -> list[View]:
    """The views ``owner`` (a family or an analyzer) declares with ``views()``, or ``[]``."""
    if isinstance(owner, DeclaresViews):
        return list(owner.views())
    return []


def _family_views(family: str) -> tuple[list[View], str]:
    """The views family ``family`` declares (or its analyzers do), and a note if it cannot."""
    try:
        plugin = get_family(family)
        if isinstance(plugin, DeclaresViews):
            return list(plugin.views()), ""
        # A family without its own views(): its analyzers may declare some.
        return [v for analyzer in plugin.analyzers() for v in declared_views(analyzer)], ""
    except Exception as exc:  # noqa: BLE001 - a broken plug-in costs its runs their views only
        message = str(exc) if isinstance(exc, FamilyNotFoundError) else (
            f"the views of model family {family!r} failed: {type(exc).__name__}: {exc}")
        warnings.warn(message, EpochstoreWarning, stacklevel=3)
        return [], f"family {family!r} is not available here: drawn from its manifests"


def run_views(source: ViewSource, family: str | None = None, *,
              checkpoints: bool = True) -> tuple[list[View], str]:
    """Every view of a run, in display order, and a note when its family's views are missing.

    Parameters
    ----------
    source
        The run's source (its analyzers and fields: metadata only).
    family
        The run's family (``variant.json``), or ``None`` for a run written with
        :class:`~epochstore.ArtifactStore` alone.
    checkpoints
        Whether the run has checkpoint records (offers loss and accuracy curves from them).

    Returns
    -------
    views
        The family's declared views whose analyzers the run holds, then default views of every
        analyzer no declared view reads, then loss/accuracy from the checkpoint records unless
        a declared view has that name.
    note
        Why the family's views are missing (not installed, or a broken plug-in), or ``""``.
    """
    held = {name for name, epochs in source.analyzers().items() if epochs}
    declared, note = _family_views(family) if family else ([], "")
    offered = [v for v in declared if set(v.analyzers) <= held]
    names = {v.name for v in offered}
    covered = {a for v in offered for a in v.analyzers}
    views: list[View] = list(offered)
    for analyzer in sorted(held - covered):
        for view in default_views(list(source.fields(analyzer).values())):
            if view.name not in names:
                views.append(view)
    if checkpoints:
        views += [MetricCurves(n) for n in ("loss", "accuracy") if n not in names]
    return views, note
