"""Modulo Addition's own renderers (Fourier components, neuron heatmaps and grids, the
neuron-frequency matrix, attention patterns, progress measures, key-frequency norms).

Each is a plain function ``render_x(data, epoch, **options) -> plotly.graph_objects.Figure``
built on :mod:`epochstore.figures`; :mod:`epochstore.families.modadd.views` turns them into the
family's declared views. They import no torch.
"""

from epochstore.families.modadd.plots.attention import render_attention_pattern
from epochstore.families.modadd.plots.evolution import (
    render_key_frequency_norms,
    render_neuron_dominant_frequency,
)
from epochstore.families.modadd.plots.freq_matrix import render_neuron_freq_matrix
from epochstore.families.modadd.plots.frequencies import render_dominant_frequencies
from epochstore.families.modadd.plots.neurons import render_neuron_grid, render_neuron_heatmap
from epochstore.families.modadd.plots.progress import render_progress_measures

__all__ = [
    "render_attention_pattern",
    "render_dominant_frequencies",
    "render_key_frequency_norms",
    "render_neuron_dominant_frequency",
    "render_neuron_freq_matrix",
    "render_neuron_grid",
    "render_neuron_heatmap",
    "render_progress_measures",
]
