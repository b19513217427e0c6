"""The figure toolkit every renderer shares: field access with clear errors, layout pieces,
line charts over epochs, placeholders.

A neutral module (it imports only plotly, NumPy and xarray): :mod:`epochstore.viz` and the
families' declared views both build on it, so a family never imports :mod:`epochstore.viz`.

Renderers build each figure in one go, ``go.Figure(data=[...], layout={...})``: plotly validates
it once. ``update_layout``, ``add_vline`` and ``make_subplots`` go through plotly's relayout
machinery and cost 10-90 ms per call, which would dominate a dashboard callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
import xarray as xr

__all__ = [
    "MARKER_COLOR",
    "TEMPLATE",
    "epoch_line_shapes",
    "epoch_of",
    "field",
    "figure",
    "grid_values",
    "heatmap_grid",
    "labels",
    "line_figure",
    "message_figure",
    "position",
    "require_fields",
    "stacked_epochs",
    "subplot_grid",
    "threshold_line",
    "values",
]

_GRID = "#e5e9f0"
#: Curves named ``train_*`` and ``test_*`` keep their colours in every figure.
_COLORS: Final = {"train": "#1f77b4", "test": "#ff7f0e"}
#: Colour of the selected-epoch marker and of threshold lines.
MARKER_COLOR: Final = "#d62728"
#: One small template for every figure, so the report and the dashboard look alike. (A named
#: template such as ``"plotly_white"`` is copied and validated per figure: ~10 ms each.)
TEMPLATE: Final[dict[str, Any]] = {
    "layout": {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"family": "Helvetica, Arial, sans-serif", "size": 12, "color": "#2a3f5f"},
        "colorway": ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                     "#7f7f7f", "#bcbd22", "#17becf"],
        "xaxis": {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID},
        "yaxis": {"gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID},
        "margin": {"l": 60, "r": 30, "t": 60, "b": 50},
        "title": {"x": 0.02, "font": {"size": 15}},
    }
}


def figure(data: Sequence[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """Return ``go.Figure(data, layout)`` with the shared template, validated once."""
    return go.Figure(data=list(data), layout={"template": TEMPLATE, **layout})


def require_fields(data: xr.Dataset, names: Iterable[str], what: str) -> None:
    """Raise a ``KeyError`` naming the missing fields and the ones ``data`` has.

    Parameters
    ----------
    data
        The dataset a renderer was given.
    names
        The fields the renderer draws.
    what
        What the renderer draws, for the message (e.g. ``"loss curves"``).
    """
    missing = [n for n in names if n not in data.data_vars]
    if missing:
        analyzer = data.attrs.get("analyzer", "?")
        raise KeyError(
            f"{what} need field(s) {missing}, but the dataset (analyzer {analyzer!r}) has "
            f"{sorted(map(str, data.data_vars))}; pass the dataset of the right analyzer"
        )


def field(data: xr.Dataset, name: str, what: str) -> xr.DataArray:
    """Return ``data[name]``, or raise the :func:`require_fields` error."""
    require_fields(data, [name], what)
    return data[name]


def values(array: xr.DataArray) -> npt.NDArray[Any]:
    """Read ``array`` (lazy or not) into a NumPy array: the one place a renderer reads data."""
    return np.asarray(array.values)


def grid_values(array: xr.DataArray) -> npt.NDArray[np.floating[Any]]:
    """Read ``array`` for a heatmap: float32 stays float32 (half the bytes sent to a browser:
    plotly ships arrays as typed binary), anything else becomes float64."""
    data = values(array)
    if data.dtype in (np.float32, np.float64):
        return data
    return data.astype(np.float64)


def position(array: xr.DataArray, dim: str, label: int, what: str) -> int:
    """Return the position of ``label`` along ``dim``.

    With a coordinate on ``dim`` (a subset such as ``ds.isel(neuron=slice(16, 32))`` with its
    labels assigned), ``label`` is looked up in it; without one, ``label`` is the position.

    Raises
    ------
    IndexError
        If ``label`` is not there, naming what is (from metadata: nothing is read).
    """
    size = int(array.sizes[dim])
    if dim in array.coords:
        labels = np.asarray(array.coords[dim].values)
        hits = np.flatnonzero(labels == label)
        if hits.size:
            return int(hits[0])
        shown = f"{labels[0]}..{labels[-1]}" if labels.size else "none"
        raise IndexError(f"{what} {label} is not in this data ({what}s {shown})")
    if not 0 <= label < size:
        raise IndexError(f"{what} {label} is out of range: this run has {what}s 0..{size - 1}")
    return int(label)


def labels(array: xr.DataArray, dim: str) -> npt.NDArray[np.int64]:
    """Return the labels along ``dim``: its coordinate, or positions when it has none."""
    if dim in array.coords:
        return np.asarray(array.coords[dim].values, dtype=np.int64)
    return np.arange(int(array.sizes[dim]), dtype=np.int64)


def epoch_of(data: xr.Dataset, epoch: int) -> int:
    """Return ``epoch``, checking it against the dataset's own scalar ``epoch`` coordinate."""
    stored = data.coords.get("epoch")
    if stored is not None and stored.ndim == 0 and int(stored) != int(epoch):
        raise ValueError(f"the dataset holds epoch {int(stored)}, not epoch {epoch}")
    return int(epoch)


def stacked_epochs(data: xr.Dataset) -> npt.NDArray[np.int64]:
    """Return the ``epoch`` coordinate of a stacked dataset (in memory: no chunk read)."""
    if "epoch" not in data.dims:
        raise ValueError(
            "cross-epoch figures need a dataset stacked along 'epoch' "
            f"(ArtifactLoader.load_epochs), got dims {dict(data.sizes)}"
        )
    return np.asarray(data["epoch"].values, dtype=np.int64)


def _axis_id(letter: str, index: int) -> str:
    return letter if index == 1 else f"{letter}{index}"


def epoch_line_shapes(epoch: int | None, rows: int = 1) -> list[dict[str, Any]]:
    """Dashed vertical lines at ``epoch`` on each of ``rows`` stacked subplots (none if None)."""
    if epoch is None:
        return []
    return [
        {
            "type": "line",
            "xref": _axis_id("x", row),
            "yref": f"{_axis_id('y', row)} domain",
            "x0": epoch,
            "x1": epoch,
            "y0": 0,
            "y1": 1,
            "line": {"color": MARKER_COLOR, "dash": "dash", "width": 1.5},
            "name": "selected epoch",
        }
        for row in range(1, rows + 1)
    ]


def threshold_line(value: float, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dashed horizontal line at ``value`` across the plot, and its label annotation."""
    shape = {
        "type": "line",
        "xref": "x domain",
        "yref": "y",
        "x0": 0,
        "x1": 1,
        "y0": value,
        "y1": value,
        "line": {"color": MARKER_COLOR, "dash": "dash", "width": 1.5},
        "name": "threshold",
    }
    note = {"text": label, "xref": "x domain", "yref": "y", "x": 1, "y": value,
            "xanchor": "right", "yanchor": "bottom", "showarrow": False}
    return shape, note


def _domain(low: float, high: float) -> list[float]:
    # Rounding keeps sums such as 1 - 4 * (h + v) from landing a hair outside [0, 1].
    return [min(max(round(low, 6), 0.0), 1.0), min(max(round(high, 6), 0.0), 1.0)]


def subplot_grid(
    rows: int,
    cols: int,
    titles: Sequence[str],
    *,
    hspace: float = 0.03,
    vspace: float = 0.08,
    shared_x: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, str]]]:
    """Axes for a ``rows x cols`` grid of subplots, built directly (``make_subplots`` is slow).

    Returns
    -------
    axes
        Layout entries ``xaxis``, ``yaxis``, ``xaxis2``, ... with domains and anchors.
    annotations
        One title annotation per subplot, row by row.
    refs
        ``(xaxis, yaxis)`` trace references (``("x2", "y2")``) per subplot, row by row.
    """
    width = (1 - hspace * (cols - 1)) / cols
    height = (1 - vspace * (rows - 1)) / rows
    axes: dict[str, Any] = {}
    notes: list[dict[str, Any]] = []
    refs: list[tuple[str, str]] = []
    for i in range(rows * cols):
        row, col = divmod(i, cols)
        n = i + 1
        x0 = col * (width + hspace)
        y1 = 1 - row * (height + vspace)
        xa, ya = _axis_id("x", n), _axis_id("y", n)
        axes[_axis_id("xaxis", n)] = {"domain": _domain(x0, x0 + width), "anchor": ya}
        axes[_axis_id("yaxis", n)] = {"domain": _domain(y1 - height, y1), "anchor": xa}
        if shared_x and n > 1:
            axes[_axis_id("xaxis", n)]["matches"] = "x"
        if i < len(titles):
            notes.append({"text": titles[i], "x": x0 + width / 2, "y": y1, "xref": "paper",
                          "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                          "showarrow": False, "font": {"size": 12}})
        refs.append((xa, ya))
    return axes, notes, refs


def heatmap_grid(
    panels: Sequence[tuple[str, npt.NDArray[Any], str]],
    *,
    columns: int,
    coloraxis: dict[str, Any],
    title: str,
    row_height: int,
    height: int | None = None,
    meta: dict[str, Any] | None = None,
    hide_ticks: bool = False,
    hspace: float = 0.03,
    vspace: float = 0.08,
) -> go.Figure:
    """Heatmaps on a grid of subplots, ``(name, z, hovertemplate)`` per panel, one colour axis.

    Rows run down (``autorange="reversed"``, as a matrix is read); the figure is
    ``row_height`` pixels a row unless ``height`` is given; ``hspace`` and ``vspace`` are
    :func:`subplot_grid`'s.
    """
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    axes, notes, refs = subplot_grid(
        rows, columns, [name for name, _, _ in panels], hspace=hspace, vspace=vspace
    )
    for key, axis in axes.items():
        if hide_ticks:
            axis["showticklabels"] = False
        if key.startswith("yaxis"):
            axis["autorange"] = "reversed"
    traces = [
        {"type": "heatmap", "z": z, "coloraxis": "coloraxis", "xaxis": xa, "yaxis": ya,
         "name": name, "hovertemplate": hover}
        for (name, z, hover), (xa, ya) in zip(panels, refs, strict=False)
    ]
    return figure(
        traces,
        {
            **axes,
            "title": {"text": title},
            "annotations": notes,
            "coloraxis": coloraxis,
            "height": height or row_height * rows + 90,
            "meta": meta or {},
        },
    )


def message_figure(text: str, *, title: str | None = None, height: int | None = None) -> go.Figure:
    """Return an empty figure that shows ``text``: the friendly state of a panel with no data.

    The text is also in ``layout.meta["epochstore_message"]``, for tests and tools.
    """
    return figure(
        [],
        {
            "title": {"text": title},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": height,
            "annotations": [{"text": text, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                             "showarrow": False, "font": {"size": 14, "color": "#555"}}],
            "meta": {"epochstore_message": text},
        },
    )


def line_figure(
    data: xr.Dataset,
    epoch: int | None,
    fields: Sequence[str],
    *,
    title: str,
    yaxis_title: str,
    log_y: bool = False,
    height: int | None = None,
    yrange: Sequence[float] | None = None,
    legend_corner: tuple[float, float] = (0.99, 0.99),
) -> go.Figure:
    """Lines of scalar ``fields`` over ``epoch``, a marker trace and a line at ``epoch``.

    Each field is read once (one value per epoch); the marker reuses those values. The legend
    sits inside the plot at ``legend_corner`` (paper coordinates), where the curves are not.
    """
    epochs = stacked_epochs(data)
    traces: list[dict[str, Any]] = []
    marked: list[float] = []
    hit = np.flatnonzero(epochs == epoch) if epoch is not None else np.empty(0, np.intp)
    for name in fields:
        y = values(data[name]).astype(np.float64)
        if y.shape != epochs.shape:
            raise ValueError(f"{name!r} must be one scalar per epoch, got shape {y.shape}")
        if hit.size:
            marked.append(float(y[hit[0]]))
        traces.append(
            {
                "type": "scatter",
                "x": epochs,
                "y": y,
                "mode": "lines",
                "name": name.replace("_", " "),
                "line": {"color": _COLORS.get(name.split("_", 1)[0])},
                "hovertemplate": "epoch %{x}<br>%{y:.4g}<extra>" + name + "</extra>",
            }
        )
    if hit.size:
        traces.append(
            {
                "type": "scatter",
                "x": [epoch] * len(marked),
                "y": marked,
                "mode": "markers",
                "name": f"epoch {epoch}",
                "showlegend": False,
                "marker": {"color": MARKER_COLOR, "size": 11, "symbol": "circle-open",
                           "line": {"width": 2}},
                "hovertemplate": "epoch %{x}<br>%{y:.4g}<extra></extra>",
            }
        )
    yaxis: dict[str, Any] = {"title": {"text": yaxis_title}, "type": "log" if log_y else "linear"}
    if yrange is not None:
        yaxis["range"] = list(yrange)
    return figure(
        traces,
        {
            "title": {"text": title if epoch is None else f"{title} (epoch {epoch})"},
            "xaxis": {"title": {"text": "epoch"}},
            "yaxis": yaxis,
            "shapes": epoch_line_shapes(epoch),
            "height": height,
            "legend": {"x": legend_corner[0], "y": legend_corner[1],
                       "xanchor": "right" if legend_corner[0] > 0.5 else "left",
                       "yanchor": "top" if legend_corner[1] > 0.5 else "bottom",
                       "bgcolor": "rgba(255,255,255,0.75)"},
            "meta": {"epoch": epoch},
        },
    )
