"""Type stub of :mod:`epochstore.viz`: its public names, loaded lazily."""

from ._common import message_figure
from .attention import render_attention_pattern
from .curves import render_accuracy_curves, render_loss_curves
from .evolution import render_key_frequency_norms, render_neuron_dominant_frequency
from .freq_matrix import render_neuron_freq_matrix
from .frequencies import render_dominant_frequencies
from .neurons import render_neuron_grid, render_neuron_heatmap
from .progress import render_progress_measures
from .sources import checkpoint_metrics

__all__ = [
    "checkpoint_metrics",
    "message_figure",
    "render_accuracy_curves",
    "render_attention_pattern",
    "render_dominant_frequencies",
    "render_key_frequency_norms",
    "render_loss_curves",
    "render_neuron_dominant_frequency",
    "render_neuron_freq_matrix",
    "render_neuron_grid",
    "render_neuron_heatmap",
    "render_progress_measures",
]
