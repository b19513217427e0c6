"""The plug-in contracts: analyzers, their fields and contexts, model families and views.

This is the one neutral module the layers meet in (as pluggy's hook specifications or xarray's
``backends/common.py``): :mod:`epochstore.pipeline`, :mod:`epochstore.families`,
:mod:`epochstore.viz` and :mod:`epochstore.dashboard` import it, and it imports none of them
(only :mod:`epochstore.naming`). Plug-ins implement these protocols; they never import each
other.

An analyzer is a small object with a ``name``, the ``fields`` it outputs (with their dims), and
``compute(model, cache, probe, context)`` returning one array per field. Optional ``prepare``
computes run-level parameters once (e.g. the key frequencies of the final checkpoint); they are
recorded in the analyzer's group attributes and handed to every ``compute`` call, so parallel
workers need no shared state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from epochstore.naming import validate_name

if TYPE_CHECKING:
    import numpy as np
    import plotly.graph_objects as go
    import torch

__all__ = [
    "Analyzer",
    "EpochContext",
    "EventSpec",
    "FieldSpec",
    "JSONValue",
    "ModelFamily",
    "RunContext",
    "View",
    "ViewSource",
    "check_analyzer",
]

JSONValue = Any  # a value json.dumps accepts


@dataclass(frozen=True)
class FieldSpec:
    """One output field of an analyzer.

    Parameters
    ----------
    dims
        Dimension names of one epoch's array, e.g. ``("neuron", "a", "b")``.
    dtype
        NumPy dtype string of the stored array.
    description
        One line for humans; stored in the analyzer manifest.
    """

    dims: tuple[str, ...]
    dtype: str = "float32"
    description: str = ""


@dataclass(frozen=True)
class RunContext:
    """What ``Analyzer.prepare`` may use: the run, its family and its checkpoints.

    Attributes
    ----------
    run_dir
        The run directory (local path or fsspec URL).
    family
        The model family of the run.
    config
        The variant's parameters (``variant.json``'s ``params``).
    epochs
        The committed checkpoint epochs, sorted.
    load_model
        ``load_model(epoch)`` returns the family's model with that checkpoint's weights, in
        eval mode on ``device``.
    device
        The torch device analysis runs on.
    """

    run_dir: str
    family: ModelFamily
    config: Mapping[str, JSONValue]
    epochs: tuple[int, ...]
    load_model: Any  # Callable[[int], torch.nn.Module]
    device: str = "cpu"


@dataclass(frozen=True)
class EpochContext:
    """What ``Analyzer.compute`` receives besides the model, cache and probe.

    Attributes
    ----------
    epoch
        The checkpoint's epoch.
    metrics
        The metrics saved with the checkpoint (e.g. ``train_loss``, ``test_accuracy``).
    config
        The variant's parameters.
    params
        This analyzer's run-level parameters, as returned by its ``prepare``.
    device
        The torch device of the model and cache.
    """

    epoch: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    config: Mapping[str, JSONValue] = field(default_factory=dict)
    params: Mapping[str, JSONValue] = field(default_factory=dict)
    device: str = "cpu"


@runtime_checkable
class Analyzer(Protocol):
    """Computes named arrays for one epoch of one run.

    Attributes
    ----------
    name
        The analyzer's name, the group name in the store (``[a-z][a-z0-9_]*``).
    version
        Bump when the computation changes; recorded in the store.
    fields
        The output fields and their dims/dtype.
    """

    name: str
    version: str
    fields: Mapping[str, FieldSpec]

    def prepare(self, run: RunContext) -> Mapping[str, JSONValue]:
        """Compute run-level parameters once, before any epoch (return ``{}`` if none)."""
        ...

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, np.ndarray]:
        """Return one array per field in ``fields``, shaped as ``fields[...].dims`` says."""
        ...


def check_analyzer(analyzer: Analyzer) -> Analyzer:
    """Validate an analyzer's name and field names; return it unchanged."""
    validate_name(analyzer.name, "analyzer name")
    for field_name in analyzer.fields:
        validate_name(field_name, f"field name of analyzer {analyzer.name!r}")
    return analyzer


@dataclass(frozen=True)
class EventSpec:
    """An event a family declares: the first epoch at which a stored series crosses a threshold.

    Events are detected from what is stored (checkpoint metrics, scalar analyzer fields), never
    from code run at training time, so any run's events can be recomputed; generic layers name
    none, families declare theirs with an optional ``events()`` method.

    Parameters
    ----------
    name
        The event's name, ``[a-z][a-z0-9_]*`` (e.g. ``"grokking"``).
    source
        ``"metrics"`` for the metrics saved with each checkpoint, else an analyzer's name.
    series
        The metric name, or the analyzer's scalar field.
    op
        ``">="`` or ``"<="``: the event is the first epoch where ``value op threshold``.
    threshold
        The threshold.
    description
        One line for humans (shown by ``epochstore ls --json`` and in docs).
    """

    name: str
    source: str
    series: str
    op: Literal[">=", "<="]
    threshold: float
    description: str = ""

    def __post_init__(self) -> None:
        validate_name(self.name, "event name")
        if self.op not in (">=", "<="):
            raise ValueError(f"event {self.name!r}: op must be '>=' or '<=', got {self.op!r}")

    def first_epoch(self, epochs: Sequence[int], values: Sequence[float]) -> int | None:
        """Return the first epoch whose value satisfies ``op threshold`` (NaN never does)."""
        for epoch, value in zip(epochs, values, strict=True):
            hit = value >= self.threshold if self.op == ">=" else value <= self.threshold
            if hit:
                return int(epoch)
        return None


@runtime_checkable
class ModelFamily(Protocol):
    """A family of models whose runs epochstore trains and analyses.

    A family knows how to build its model from a config, make its analysis probe, run the model
    with an activation cache, train it while saving checkpoints, and which analyzers apply.
    Families are found through the ``epochstore.families`` entry-point group (see
    :mod:`epochstore.plugins`) or registered in a notebook with
    :func:`epochstore.plugins.register_family`. A family may also declare its own views with a
    ``views()`` method returning a sequence of :class:`View`, and the events its runs go
    through with an ``events()`` method returning a sequence of :class:`EventSpec` (shown in
    the variant summary; a family without it declares none).

    Attributes
    ----------
    name
        Registry name, ``[a-z][a-z0-9_]*`` (e.g. ``"modadd"``).
    """

    name: str

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """Named configurations (at least ``"demo"``); values are JSON-serialisable dicts."""
        ...

    def build_model(self, config: Mapping[str, Any]) -> torch.nn.Module:
        """Build a freshly initialised model for ``config``."""
        ...

    def make_probe(self, config: Mapping[str, Any], device: str = "cpu") -> Any:
        """Build the analysis probe (the inputs analyzers run the model on)."""
        ...

    def run_with_cache(self, model: torch.nn.Module, probe: Any) -> Mapping[str, torch.Tensor]:
        """Run one forward pass on ``probe`` and return the activation cache (no grad)."""
        ...

    def analyzers(self) -> Sequence[Analyzer]:
        """The analyzers that apply to this family, in a stable order."""
        ...

    def train(
        self,
        run_dir: str,
        config: Mapping[str, Any],
        *,
        progress: Callable[[int, Mapping[str, float]], None] | None = None,
    ) -> None:
        """Train a run into ``run_dir``, saving checkpoints with ``CheckpointManager``."""
        ...


@runtime_checkable
class ViewSource(Protocol):
    """Where a view reads from: an :class:`~epochstore.store.ArtifactLoader` satisfies it."""

    def load_epoch(self, analyzer: str, epoch: int) -> Any:
        """One epoch of an analyzer as a lazy ``xarray.Dataset``."""
        ...

    def load_epochs(self, analyzer: str) -> Any:
        """Every epoch of an analyzer stacked along ``epoch``, lazily."""
        ...


@runtime_checkable
class View(Protocol):
    """A figure drawn from stored artifacts: at the slider's epoch, or across epochs.

    Every analyzer field gets default views from its manifest alone (:mod:`epochstore.viz`);
    an analyzer or a family may declare better ones (a ``views()`` method returning these).

    Attributes
    ----------
    name
        Unique among a run's views, ``[a-z][a-z0-9_]*``.
    title
        What the figure shows, naming the analyzer and field.
    analyzers
        The analyzers it reads; the view is offered only for runs that hold them all.
    scope
        ``"epoch"``: drawn at the selected epoch; ``"across"``: over all epochs (the selected
        epoch may be marked).
    """

    name: str
    title: str
    analyzers: tuple[str, ...]
    scope: Literal["epoch", "across"]

    def render(
        self, source: ViewSource, epoch: int | None, selection: Mapping[str, int]
    ) -> go.Figure:
        """Draw the figure; ``selection`` maps a picked dim (e.g. ``"neuron"``) to an index."""
        ...
