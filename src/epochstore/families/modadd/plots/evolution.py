"""How frequencies evolve over training: key-frequency norms, and one neuron's frequency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import (
    MARKER_COLOR,
    epoch_line_shapes,
    field,
    figure,
    position,
    stacked_epochs,
    values,
)

__all__ = ["render_key_frequency_norms", "render_neuron_dominant_frequency"]


def _top_frequencies(norms: xr.DataArray, top_k: int) -> list[int]:
    # The last epoch only: the frequencies the trained model ends up using.
    last = values(norms.isel(epoch=-1))
    return sorted(int(i) + 1 for i in np.argsort(last)[::-1][:top_k])


def _suffix(epoch: int | None) -> str:
    return "" if epoch is None else f" (epoch {epoch})"


def render_key_frequency_norms(
    data: xr.Dataset,
    epoch: int | None = None,
    *,
    key_frequencies: Sequence[int] | None = None,
    top_k: int = 5,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Embedding norm of each key frequency over epochs.

    Parameters
    ----------
    data
        ``ArtifactLoader.load_epochs("dominant_frequencies")``: ``frequency_norms`` (dims
        ``(epoch, frequency)``, entry ``k - 1`` is frequency ``k``) is read, only the key
        frequencies' entries.
    epoch
        The selected epoch (a dashed line), or ``None``.
    key_frequencies
        The frequencies ``k`` to draw, e.g. ``progress_measures``' stored key frequencies;
        default the ``top_k`` largest at the last epoch.
    top_k
        How many frequencies to pick when ``key_frequencies`` is not given.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One line per key frequency (named ``k = ...``).
    """
    norms = field(data, "frequency_norms", "key-frequency norms")
    epochs = stacked_epochs(data)
    n_freq = int(norms.shape[-1])
    keys = _top_frequencies(norms, top_k) if key_frequencies is None else list(key_frequencies)
    bad = [k for k in keys if not 1 <= k <= n_freq]
    if bad:
        raise ValueError(f"key frequencies {bad} are outside 1..{n_freq}")
    block = values(norms.isel({norms.dims[-1]: [k - 1 for k in keys]})).astype(np.float64)
    traces = [
        {"type": "scatter", "x": epochs, "y": block[:, i], "mode": "lines", "name": f"k = {k}",
         "hovertemplate": f"k = {k}<br>epoch %{{x}}<br>norm %{{y:.4g}}<extra></extra>"}
        for i, k in enumerate(keys)
    ]
    return figure(
        traces,
        {
            "title": {"text": (title or "Key-frequency norms of the embedding") + _suffix(epoch)},
            "xaxis": {"title": {"text": "epoch"}},
            "yaxis": {"title": {"text": "sqrt(sin_k^2 + cos_k^2)"}},
            "shapes": epoch_line_shapes(epoch),
            "height": height,
            "meta": {"epoch": epoch, "key_frequencies": keys},
        },
    )


def render_neuron_dominant_frequency(
    data: xr.Dataset,
    epoch: int | None = None,
    *,
    neuron: int = 0,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """The dominant frequency of one neuron over epochs, coloured by how dominant it is.

    Parameters
    ----------
    data
        ``ArtifactLoader.load_epochs("neuron_freq_norm")``: ``dominant_frequency[:, neuron]``
        and ``dominant_fraction[:, neuron]`` are read (one small chunk per epoch each).
    epoch
        The selected epoch (a dashed line and a ring), or ``None``.
    neuron
        The neuron (a label of the ``neuron`` coordinate if ``data`` has one).
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        A step line of the dominant frequency with markers coloured by fraction (0-1
        Viridis), plus a marker trace at ``epoch`` when it is one of the epochs.
    """
    frequency = field(data, "dominant_frequency", "a neuron's dominant frequency")
    fraction = field(data, "dominant_fraction", "a neuron's dominant frequency")
    at = position(frequency, "neuron", int(neuron), "neuron")
    epochs = stacked_epochs(data)
    freq = values(frequency.isel(neuron=at)).astype(np.int64)
    frac = values(fraction.isel(neuron=at)).astype(np.float64)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": epochs,
            "y": freq,
            "mode": "lines+markers",
            "line": {"shape": "hv", "color": "#aaa"},
            "marker": {"color": frac, "colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0,
                       "size": 8, "colorbar": {"title": {"text": "fraction"}}},
            "customdata": frac,
            "name": f"neuron {neuron}",
            "hovertemplate": "epoch %{x}<br>frequency %{y}<br>fraction %{customdata:.3f}"
            "<extra></extra>",
        }
    ]
    hit = np.flatnonzero(epochs == epoch) if epoch is not None else np.empty(0, np.intp)
    if hit.size:
        traces.append({"type": "scatter", "x": [epoch], "y": [freq[hit[0]]], "mode": "markers",
                       "name": f"epoch {epoch}",
                       "marker": {"color": MARKER_COLOR, "size": 15, "symbol": "circle-open",
                                  "line": {"width": 2}}})
    return figure(
        traces,
        {
            "title": {"text": (title or f"Neuron {neuron}: dominant frequency over training")
                      + _suffix(epoch)},
            "xaxis": {"title": {"text": "epoch"}},
            "yaxis": {"title": {"text": "dominant frequency k (0: none)"}},
            "shapes": epoch_line_shapes(epoch),
            "height": height,
            "showlegend": False,
            "meta": {"epoch": epoch, "neuron": neuron},
        },
    )
