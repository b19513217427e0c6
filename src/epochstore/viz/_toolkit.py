"""Re-exports of :mod:`epochstore.figures` under :mod:`epochstore.viz` (a lazy stub imports
relative modules only)."""

from epochstore.figures import line_figure, message_figure

__all__ = ["line_figure", "message_figure"]
