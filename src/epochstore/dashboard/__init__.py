"""The web dashboard: ``epochstore serve ROOT``.

A Dash app (:func:`~epochstore.dashboard.app.create_app`) over a
:class:`~epochstore.dashboard.service.DashboardService`, which finds the runs under ``ROOT``,
describes a run from its metadata, and draws the panels of one epoch reading only that epoch's
needed chunks. The callbacks are plain functions in :mod:`epochstore.dashboard.callbacks`.
See ``docs/dashboard.md``.
"""

# Names load on first use (see epochstore/__init__.py); __init__.pyi lists them.
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
