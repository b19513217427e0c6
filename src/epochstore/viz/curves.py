"""Loss and accuracy over epochs, with a marker at the selected epoch."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import line_figure, require_fields

__all__ = [
    "ACCURACY_FIELDS",
    "LOSS_FIELDS",
    "line_figure",
    "render_accuracy_curves",
    "render_loss_curves",
]

LOSS_FIELDS = ("train_loss", "test_loss")
ACCURACY_FIELDS = ("train_accuracy", "test_accuracy")


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
        A dataset stacked along ``epoch``: ``ArtifactLoader.load_epochs(analyzer)`` of an
        analyzer that stores metrics per epoch (lazy: only the loss fields are read, one value
        per epoch) or :func:`epochstore.viz.checkpoint_metrics`.
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
    >>> metrics = epochstore.viz.checkpoint_metrics("runs/mine")  # doctest: +SKIP
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
