"""Plotly renderers of a run's artifacts.

Per-epoch renderers take one epoch's dataset (:meth:`ArtifactLoader.load_epoch`) and the epoch,
``render_x(data, epoch, **options) -> plotly.graph_objects.Figure``; cross-epoch renderers take
the lazily stacked dataset (:meth:`ArtifactLoader.load_epochs`) and an optional selected epoch
to mark. Every renderer reads only the values it draws (e.g. one neuron's chunk for a heatmap).
:func:`~epochstore.viz.report.write_report` puts the main figures in one HTML page.
"""

from epochstore.viz._common import message_figure
from epochstore.viz.attention import render_attention_pattern
from epochstore.viz.curves import render_accuracy_curves, render_loss_curves
from epochstore.viz.evolution import render_key_frequency_norms, render_neuron_dominant_frequency
from epochstore.viz.freq_matrix import render_neuron_freq_matrix
from epochstore.viz.frequencies import render_dominant_frequencies
from epochstore.viz.neurons import render_neuron_grid, render_neuron_heatmap
from epochstore.viz.progress import render_progress_measures
from epochstore.viz.sources import checkpoint_metrics

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
