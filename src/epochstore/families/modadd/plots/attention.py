"""Attention patterns of one epoch, when a family stores them (modadd does not by default)."""

from __future__ import annotations

import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import epoch_of, field, grid_values, heatmap_grid

__all__ = ["render_attention_pattern"]


def render_attention_pattern(
    data: xr.Dataset,
    epoch: int,
    *,
    name: str = "patterns",
    head: int | None = None,
    columns: int = 4,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Heatmaps of attention weights, one per head (or one chosen head), in 0-1 Blues.

    Parameters
    ----------
    data
        One epoch of an attention analyzer with field ``name`` of dims ``(head, row, col)``
        (e.g. ``(head, a, b)``: attention from ``=`` to a token over the grid) or ``(row,
        col)``. Only the heads drawn are read.
    epoch
        The epoch shown (in the title).
    name
        The field holding the weights.
    head
        Draw only this head; ``None`` draws every head on a grid.
    columns
        Heatmaps per row when drawing every head.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` trace per head drawn.
    """
    epoch = epoch_of(data, epoch)
    array = field(data, name, "attention patterns")
    if array.ndim == 2:
        array = array.expand_dims("head")
    if array.ndim != 3:
        raise ValueError(f"attention patterns need dims (head, row, col), got {array.dims}")
    n_heads = int(array.shape[0])
    heads = list(range(n_heads)) if head is None else [int(head)]
    for h in heads:
        if not 0 <= h < n_heads:
            raise IndexError(f"head {h} is out of range: this run has heads 0..{n_heads - 1}")
    block = grid_values(array.isel({array.dims[0]: heads}))
    row_dim, col_dim = (str(d) for d in array.dims[1:])
    hover = f"<br>{row_dim}=%{{y}}, {col_dim}=%{{x}}<br>%{{z:.3f}}<extra></extra>"
    return heatmap_grid(
        [(f"head {h}", block[i], f"head {h}{hover}") for i, h in enumerate(heads)],
        columns=columns,
        coloraxis={"colorscale": "Blues", "cmin": 0.0, "cmax": 1.0},
        title=title or f"Attention patterns, epoch {epoch}",
        row_height=250,
        height=height,
        meta={"epoch": epoch},
    )
