"""Dominant frequencies of one epoch: the token embedding's norm along each Fourier component."""

from __future__ import annotations

from typing import Final

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from epochstore.analysis.fourier import fourier_labels
from epochstore.figures import epoch_of, field, figure, threshold_line, values

__all__ = ["DEFAULT_THRESHOLD", "render_dominant_frequencies"]

#: Norm above which a Fourier component counts as dominant (the original tool's default).
DEFAULT_THRESHOLD: Final = 1.0

_STRONG, _WEAK = "rgba(31, 119, 180, 1.0)", "rgba(31, 119, 180, 0.35)"


def _labels(n: int) -> list[str]:
    # The modadd basis has an odd number of rows (const, sin k, cos k); anything else is
    # labelled by index rather than guessed.
    return fourier_labels(n) if n % 2 == 1 and n >= 3 else [str(i) for i in range(n)]


def render_dominant_frequencies(
    data: xr.Dataset,
    epoch: int,
    *,
    threshold: float | None = DEFAULT_THRESHOLD,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Bar chart of one epoch's embedding Fourier norms, with a threshold line.

    Parameters
    ----------
    data
        One epoch of the ``dominant_frequencies`` analyzer (``ArtifactLoader.load_epoch``); its
        ``coefficients`` field, dims ``(fourier_component,)``, is read (one small chunk).
    epoch
        The epoch shown (in the title).
    threshold
        Components with a norm above it are drawn solid, the others faded; a dashed line marks
        it. ``None`` draws neither.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Bar`` trace with one bar per component (``const, sin 1, cos 1, ...``).

    Examples
    --------
    >>> ds = loader.load_epoch("dominant_frequencies", 100)  # doctest: +SKIP
    >>> render_dominant_frequencies(ds, 100, threshold=0.5).show()  # doctest: +SKIP
    """
    epoch = epoch_of(data, epoch)
    coefficients = values(field(data, "coefficients", "dominant frequencies")).astype(np.float64)
    if coefficients.ndim != 1:
        raise ValueError(
            f"dominant frequencies need 1-D coefficients, got shape {coefficients.shape}"
        )
    colors: list[str] | str = _STRONG
    shapes, notes = [], []
    if threshold is not None:
        colors = [_STRONG if v > threshold else _WEAK for v in coefficients]
        shape, note = threshold_line(threshold, f"threshold {threshold:g}")
        shapes, notes = [shape], [note]
    bar = {
        "type": "bar",
        "x": _labels(coefficients.size),
        "y": coefficients,
        "marker": {"color": colors},
        "name": "norm",
        "hovertemplate": "<b>%{x}</b><br>norm %{y:.4f}<extra></extra>",
    }
    return figure(
        [bar],
        {
            "title": {"text": title or f"Embedding Fourier components, epoch {epoch}"},
            "xaxis": {"title": {"text": "Fourier component"}, "tickangle": -45},
            "yaxis": {"title": {"text": "norm of W_E along the component"}},
            "shapes": shapes,
            "annotations": notes,
            "height": height,
            "showlegend": False,
            "meta": {"epoch": epoch},
        },
    )
