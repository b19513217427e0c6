"""The neuron-frequency matrix of one epoch: which frequency each neuron is tuned to."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import epoch_of, field, figure, grid_values, values

__all__ = ["SPECIALISED", "neuron_order", "render_neuron_freq_matrix"]

#: A neuron with at least this fraction on one frequency is specialised (as the analyzer says).
SPECIALISED = 0.85


def neuron_order(
    dominant_frequency: npt.ArrayLike, dominant_fraction: npt.ArrayLike
) -> npt.NDArray[np.intp]:
    """Return the neurons sorted by dominant frequency, then by decreasing fraction.

    Neurons without variation (dominant frequency 0, e.g. dead) go last, so the clusters of
    specialised neurons appear as blocks along the diagonal.

    Examples
    --------
    >>> neuron_order([2, 1, 0, 1], [0.9, 0.5, 0.0, 0.8]).tolist()
    [3, 1, 0, 2]
    """
    freq = np.asarray(dominant_frequency, dtype=np.int64)
    frac = np.asarray(dominant_fraction, dtype=np.float64)
    key = np.where(freq > 0, freq, np.iinfo(np.int64).max)
    order: npt.NDArray[np.intp] = np.lexsort((-frac, key))
    return order


def render_neuron_freq_matrix(
    data: xr.Dataset,
    epoch: int,
    *,
    sort: bool = True,
    title: str | None = None,
    height: int | None = None,
) -> go.Figure:
    """Heatmap of the fraction of each neuron's energy per frequency, 0-1 Viridis.

    Parameters
    ----------
    data
        One epoch of the ``neuron_freq_norm`` analyzer: ``norm_matrix`` ``(frequency,
        neuron)`` is read; ``dominant_frequency`` and ``dominant_fraction`` too when present
        (else they are derived from the matrix).
    epoch
        The epoch shown (in the title).
    sort
        Order the neurons by dominant frequency (then by decreasing fraction), so clusters
        show as blocks; ``False`` keeps neuron order.
    title, height
        Override the title and the figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` trace of shape ``(n_frequencies, n_neurons)``, ``zmin=0``, ``zmax=1``;
        ``x`` holds the neuron of each column (as a category), so the hover names it.
    """
    epoch = epoch_of(data, epoch)
    matrix = grid_values(field(data, "norm_matrix", "the neuron-frequency matrix"))
    if matrix.ndim != 2:
        raise ValueError(f"norm_matrix must be 2-D (frequency, neuron), got {matrix.shape}")
    if "dominant_frequency" in data.data_vars and "dominant_fraction" in data.data_vars:
        dominant = values(data["dominant_frequency"])
        fraction = values(data["dominant_fraction"])
    else:
        fraction = matrix.max(axis=0) if matrix.shape[0] else np.zeros(matrix.shape[1])
        dominant = np.where(fraction > 0, matrix.argmax(axis=0) + 1, 0)
    order = neuron_order(dominant, fraction) if sort else np.arange(matrix.shape[1])
    heatmap = {
        "type": "heatmap",
        "z": matrix[:, order],
        # Neuron ids as categories: the hover names the neuron, at a few bytes per column.
        "x": [str(n) for n in order],
        "y": np.arange(1, matrix.shape[0] + 1),
        "colorscale": "Viridis",
        "zmin": 0.0,
        "zmax": 1.0,
        "colorbar": {"title": {"text": "fraction"}},
        "hovertemplate": "neuron %{x}<br>frequency %{y}<br>fraction %{z:.3f}<extra></extra>",
    }
    specialised = int((fraction >= SPECIALISED).sum())
    return figure(
        [heatmap],
        {
            "title": {
                "text": title
                or f"Neuron-frequency fractions, epoch {epoch} "
                f"({specialised} neurons >= {SPECIALISED})"
            },
            "xaxis": {"title": {"text": "neuron (sorted by dominant frequency)" if sort
                                else "neuron"},
                      "type": "category", "showticklabels": False},
            "yaxis": {"title": {"text": "frequency k"}},
            "height": height,
            "meta": {"epoch": epoch},
        },
    )
