"""Type stub of :mod:`epochstore.dashboard`: its public names, loaded lazily."""

from .app import create_app
from .service import DashboardService, RunState

__all__ = ["DashboardService", "RunState", "create_app"]
