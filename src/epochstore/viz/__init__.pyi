"""Type stub of :mod:`epochstore.viz`: its public names, loaded lazily."""

from ._toolkit import line_figure, message_figure
from .curves import render_accuracy_curves, render_loss_curves
from .peers import (
    peer_overlay,
    peer_scatter,
    summary_keys,
    summary_value,
    variant_columns,
    variant_label,
    variant_records,
)
from .report import report_figures, write_report
from .root_report import root_report_html, write_root_report
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
    "peer_overlay",
    "peer_scatter",
    "render_accuracy_curves",
    "render_loss_curves",
    "report_figures",
    "root_report_html",
    "run_views",
    "summary_keys",
    "summary_value",
    "variant_columns",
    "variant_label",
    "variant_records",
    "write_report",
    "write_root_report",
]
