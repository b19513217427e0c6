"""The web dashboard: ``epochstore serve ROOT``.

A Dash app (:func:`~epochstore.dashboard.app.create_app`) over a
:class:`~epochstore.dashboard.service.DashboardService`, which finds the runs under ``ROOT``,
describes a run from its metadata, and draws the panels of one epoch reading only that epoch's
needed chunks. The callbacks are plain functions in :mod:`epochstore.dashboard.callbacks`.
See ``docs/dashboard.md``.
"""

from epochstore.dashboard.app import create_app
from epochstore.dashboard.service import DashboardService, RunState

__all__ = ["DashboardService", "RunState", "create_app"]
