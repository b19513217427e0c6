"""The progress measures of Nanda et al. (2023) over epochs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import (
    MARKER_COLOR,
    epoch_line_shapes,
    figure,
    require_fields,
    stacked_epochs,
    subplot_grid,
    values,
)

__all__ = ["PROGRESS_PANELS", "render_progress_measures"]

#: The stacked panels: title, the fields each draws (drawn when any exists), log axis or not.
PROGRESS_PANELS: Final[tuple[tuple[str, tuple[str, ...], bool], ...]] = (
    ("loss (log)", ("restricted_loss", "excluded_loss", "test_loss", "train_loss"), True),
    ("Gini coefficient of Fourier norms", ("gini_embedding", "gini_neuron_logit"), False),
    ("sum of squared weights", ("sum_squared_weights",), False),
    ("specialised neurons", ("specialised_neurons",), False),
)


def render_progress_measures(
    data: xr.Dataset,
    epoch: int | None = None,
    *,
    fields: Sequence[str] | None = None,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Progress measures over epochs: one subplot per kind, the selected epoch marked.

    Parameters
    ----------
    data
        ``ArtifactLoader.load_epochs("progress_measures")`` (lazy: only the drawn fields are
        read, one value per epoch). ``train_loss``/``test_loss`` are drawn too if merged in.
    epoch
        The selected epoch (a dashed line and a dot on every curve), or ``None``.
    fields
        Draw only these fields; default every known field present.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Subplots stacked on a shared epoch axis (losses on a log axis), one line per field.
    """
    if fields is not None:
        require_fields(data, fields, "progress measures")
    wanted = set(map(str, data.data_vars)) if fields is None else set(fields)
    panels = [
        (label, [f for f in names if f in wanted and f in data.data_vars], log)
        for label, names, log in PROGRESS_PANELS
    ]
    panels = [panel for panel in panels if panel[1]]
    if not panels:
        require_fields(data, ["restricted_loss", "excluded_loss"], "progress measures")
    epochs = stacked_epochs(data)
    hit = np.flatnonzero(epochs == epoch) if epoch is not None else np.empty(0, np.intp)
    axes, notes, refs = subplot_grid(len(panels), 1, [label for label, _, _ in panels],
                                     vspace=0.07, shared_x=True)
    traces: list[dict[str, Any]] = []
    for (_, names, log), (xa, ya) in zip(panels, refs, strict=True):
        axes["yaxis" + ya[1:]]["type"] = "log" if log else "linear"
        for name in names:
            y = values(data[name]).astype(np.float64)
            traces.append({"type": "scatter", "x": epochs, "y": y, "mode": "lines",
                           "name": name.replace("_", " "), "xaxis": xa, "yaxis": ya,
                           "hovertemplate": "epoch %{x}<br>%{y:.4g}<extra>" + name + "</extra>"})
            if hit.size:
                traces.append({"type": "scatter", "x": [epoch], "y": [y[hit[0]]],
                               "mode": "markers", "showlegend": False, "xaxis": xa, "yaxis": ya,
                               "name": f"{name} at epoch {epoch}",
                               "marker": {"color": MARKER_COLOR, "size": 8}})
    bottom = "xaxis" + refs[-1][0][1:]
    axes[bottom]["title"] = {"text": "epoch"}
    return figure(
        traces,
        {
            **axes,
            "title": {"text": title
                      or "Progress measures" + ("" if epoch is None else f" (epoch {epoch})")},
            "annotations": notes,
            "shapes": epoch_line_shapes(epoch, rows=len(panels)),
            "height": height or 200 * len(panels) + 110,
            "meta": {"epoch": epoch},
        },
    )
