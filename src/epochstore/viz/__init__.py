"""Plotly renderers of a run's artifacts.

Per-epoch renderers take one epoch's dataset (:meth:`ArtifactLoader.load_epoch`) and the epoch,
``render_x(data, epoch, **options) -> plotly.graph_objects.Figure``; cross-epoch renderers take
the lazily stacked dataset (:meth:`ArtifactLoader.load_epochs`) and an optional selected epoch
to mark. Every renderer reads only the values it draws (e.g. one neuron's chunk for a heatmap).
:func:`~epochstore.viz.report.write_report` puts the main figures in one HTML page.
"""

# Names load on first use (see epochstore/__init__.py); __init__.pyi lists them.
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
