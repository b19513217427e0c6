"""The analysis pipeline: analyzers, plans, executors and :class:`AnalysisPipeline`."""

# Names load on first use (see epochstore/__init__.py); __init__.pyi lists them.
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
