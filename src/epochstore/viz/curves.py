"""Loss and accuracy over epochs, with a marker at the selected epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from epochstore.viz._common import (
    MARKER_COLOR,
    epoch_line_shapes,
    figure,
    require_fields,
    stacked_epochs,
    values,
)

__all__ = [
    "ACCURACY_FIELDS",
    "LOSS_FIELDS",
    "line_figure",
    "render_accuracy_curves",
    "render_loss_curves",
]

LOSS_FIELDS = ("train_loss", "test_loss")
ACCURACY_FIELDS = ("train_accuracy", "test_accuracy")
_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}


def _fields(
    data: xr.Dataset, fields: Sequence[str] | None, defaults: Sequence[str], what: str
) -> list[str]:
    if fields is not None:
        require_fields(data, fields, what)
        return list(fields)
    present = [f for f in defaults if f in data.data_vars]
    if not present:
        require_fields(data, defaults, what)
    return present


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


def render_loss_curves(
    data: xr.Dataset,
    epoch: int | None = None,
    *,
    fields: Sequence[str] | None = None,
    log_y: bool = True,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Train and test loss over epochs, with the selected epoch marked.

    Parameters
    ----------
    data
        A dataset stacked along ``epoch``: ``ArtifactLoader.load_epochs("training_metrics")``
        (lazy: only the loss fields are read, one value per epoch) or
        :func:`epochstore.viz.checkpoint_metrics`.
    epoch
        The selected epoch: a dashed line and a marker on each curve; ``None`` for none.
    fields
        The fields to draw; default whichever of ``train_loss``, ``test_loss`` exist.
    log_y
        Logarithmic loss axis (the default: grokking spans orders of magnitude).
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One line per field, plus one marker trace (not in the legend) when ``epoch`` is one of
        the epochs.

    Examples
    --------
    >>> metrics = loader.load_epochs("training_metrics")  # doctest: +SKIP
    >>> render_loss_curves(metrics, epoch=1400)  # doctest: +SKIP
    """
    chosen = _fields(data, fields, LOSS_FIELDS, "loss curves")
    return line_figure(data, epoch, chosen, title=title or "Loss", yaxis_title="loss",
                       log_y=log_y, height=height)


def render_accuracy_curves(
    data: xr.Dataset,
    epoch: int | None = None,
    *,
    fields: Sequence[str] | None = None,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Train and test accuracy over epochs, with the selected epoch marked.

    Parameters and result as :func:`render_loss_curves` (default fields ``train_accuracy``,
    ``test_accuracy``; a linear 0-1 axis).
    """
    chosen = _fields(data, fields, ACCURACY_FIELDS, "accuracy curves")
    return line_figure(data, epoch, chosen, title=title or "Accuracy",
                       yaxis_title="accuracy", height=height, yrange=(-0.02, 1.02),
                       legend_corner=(0.99, 0.03))
