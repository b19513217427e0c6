"""Type stub of :mod:`epochstore.pipeline`: its public names, loaded lazily."""

from .analyzer import Analyzer, EpochContext, FieldSpec, RunContext
from .executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SequentialExecutor,
)
from .pipeline import AnalysisPipeline, ProgressCallback
from .plan import EpochResult, EpochTask, Plan, RunReport

__all__ = [
    "AnalysisPipeline",
    "Analyzer",
    "DaskExecutor",
    "EpochContext",
    "EpochResult",
    "EpochTask",
    "Executor",
    "FieldSpec",
    "Plan",
    "ProcessExecutor",
    "ProgressCallback",
    "RunContext",
    "RunReport",
    "SequentialExecutor",
]
