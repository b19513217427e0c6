"""Type stub of :mod:`epochstore.viz`: its public names, loaded lazily."""

from ._toolkit import line_figure, message_figure
from .curves import render_accuracy_curves, render_loss_curves
from .report import report_figures, write_report
from .run_source import RunSource
from .sources import checkpoint_metrics
from .views import FieldView, MetricCurves, declared_views, default_views, run_views

__all__ = [
    "FieldView",
    "MetricCurves",
    "RunSource",
    "checkpoint_metrics",
    "declared_views",
    "default_views",
    "line_figure",
    "message_figure",
    "render_accuracy_curves",
    "render_loss_curves",
    "report_figures",
    "run_views",
    "write_report",
]
