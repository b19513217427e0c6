"""Neuron activations of one epoch over the (a, b) grid: one neuron, or a grid of neurons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import (
    epoch_of,
    field,
    figure,
    grid_values,
    heatmap_grid,
    labels,
    position,
)

__all__ = ["render_neuron_grid", "render_neuron_heatmap"]

_FIELD = "activations"


def _check_dims(array: xr.DataArray) -> None:
    if array.ndim != 3 or array.dims[0] != "neuron":
        raise ValueError(f"neuron activations need dims ('neuron', a, b), got {array.dims}")


def _symmetric_range(z: npt.NDArray[Any]) -> float:
    # RdBu centred on 0: the colour range is symmetric, so white is exactly zero.
    top = float(np.nanmax(np.abs(z))) if z.size else 0.0
    return top if top > 0 else 1.0


def render_neuron_heatmap(
    data: xr.Dataset,
    epoch: int,
    *,
    neuron: int = 0,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Heatmap of one neuron's activation over the ``(a, b)`` grid, RdBu centred on 0.

    Parameters
    ----------
    data
        One epoch of the ``neuron_activations`` analyzer; only ``activations[neuron]`` is
        read, i.e. the one chunk that holds that neuron.
    epoch
        The epoch shown (in the title).
    neuron
        The neuron: a label of ``data``'s ``neuron`` coordinate if it has one (a subset of
        neurons), else a position ``0 <= neuron < d_mlp``.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` trace of shape ``(p, p)``: ``b`` along x, ``a`` along y (down).

    Raises
    ------
    IndexError
        If ``neuron`` is out of range (checked from metadata, before any read).
    """
    epoch = epoch_of(data, epoch)
    array = field(data, _FIELD, "neuron heatmaps")
    _check_dims(array)
    neuron = int(neuron)
    z = grid_values(array.isel(neuron=position(array, "neuron", neuron, "neuron")))
    top = _symmetric_range(z)
    heatmap = {
        "type": "heatmap",
        "z": z,
        "colorscale": "RdBu",
        "zmid": 0.0,
        "zmin": -top,
        "zmax": top,
        "colorbar": {"title": {"text": "activation"}},
        "hovertemplate": "a=%{y}, b=%{x}<br>activation %{z:.4f}<extra></extra>",
    }
    return figure(
        [heatmap],
        {
            "title": {"text": title or f"Neuron {neuron} activation, epoch {epoch}"},
            "xaxis": {"title": {"text": "b"}, "constrain": "domain"},
            "yaxis": {"title": {"text": "a"}, "scaleanchor": "x", "autorange": "reversed"},
            "height": height,
            "meta": {"epoch": epoch, "neuron": neuron},
        },
    )


def render_neuron_grid(
    data: xr.Dataset,
    epoch: int,
    *,
    neurons: Sequence[int] | None = None,
    columns: int = 4,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """A grid of neuron heatmaps sharing one RdBu colour scale centred on 0.

    Parameters
    ----------
    data
        One epoch of the ``neuron_activations`` analyzer; only the chosen neurons are read
        (one outer-indexed read: the chunks that hold them).
    epoch
        The epoch shown (in the title).
    neurons
        The neurons to show, in order; default the first 16 of ``data`` (or all, if fewer).
    columns
        Heatmaps per row.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` trace per neuron, on a ``ceil(n / columns) x columns`` grid.
    """
    epoch = epoch_of(data, epoch)
    array = field(data, _FIELD, "neuron grids")
    _check_dims(array)
    chosen = labels(array, "neuron")[:16].tolist() if neurons is None else [int(n) for n in neurons]
    if not chosen:
        raise ValueError("neuron grid: give at least one neuron")
    where = {n: position(array, "neuron", n, "neuron") for n in chosen}
    unique = sorted(set(where.values()))
    block = grid_values(array.isel(neuron=unique))
    top = _symmetric_range(block)
    return heatmap_grid(
        [
            (f"neuron {n}", block[unique.index(where[n])],
             f"neuron {n}<br>a=%{{y}}, b=%{{x}}<br>%{{z:.4f}}<extra></extra>")
            for n in chosen
        ],
        columns=columns,
        coloraxis={"colorscale": "RdBu", "cmid": 0.0, "cmin": -top, "cmax": top},
        title=title or f"Neuron activations over (a, b), epoch {epoch}",
        row_height=170,
        height=height,
        meta={"epoch": epoch, "neurons": chosen},
        hide_ticks=True,
        hspace=0.02,
        vspace=0.09,
    )
