"""The analysis pipeline: analyzers, plans, executors and :class:`AnalysisPipeline`."""

from epochstore.interface import Analyzer, AnalyzerBase, EpochContext, FieldSpec, RunContext
from epochstore.pipeline.executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SequentialExecutor,
)
from epochstore.pipeline.pipeline import AnalysisPipeline, ProgressCallback
from epochstore.pipeline.plan import EpochResult, EpochTask, Plan, RunReport

__all__ = [
    "AnalysisPipeline",
    "Analyzer",
    "AnalyzerBase",
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
