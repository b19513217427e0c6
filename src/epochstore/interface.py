"""The plug-in contracts: analyzers, their fields and contexts, model families and views.

This is the one neutral module the layers meet in (as pluggy's hook specifications or xarray's
``backends/common.py``): :mod:`epochstore.pipeline`, :mod:`epochstore.families`,
:mod:`epochstore.viz` and :mod:`epochstore.dashboard` import it, and it imports none of them
(only :mod:`epochstore.naming` and :mod:`epochstore.errors`). Plug-ins implement these
protocols; they never import each other.

An analyzer is a small object with a ``name``, the ``fields`` it outputs (with their dims), and
``compute(model, cache, probe, context)`` returning one array per field. Optional ``prepare``
computes run-level parameters once (e.g. the key frequencies of the final checkpoint); they are
recorded in the analyzer's group attributes and handed to every ``compute`` call, so parallel
workers need no shared state.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from epochstore.errors import InvalidVersionError
from epochstore.naming import validate_name

if TYPE_CHECKING:
    import numpy as np
    import plotly.graph_objects as go
    import torch

__all__ = [
    "Analyzer",
    "AnalyzerBase",
    "DeclaresViews",
    "EpochContext",
    "EventSpec",
    "FieldSpec",
    "JSONValue",
    "ModelFamily",
    "RunContext",
    "Scope",
    "StoredField",
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
    location
        Where the run lives (local path or fsspec URL); ``run_dir`` is its deprecated name.
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

    location: str
    family: ModelFamily
    config: Mapping[str, JSONValue]
    epochs: tuple[int, ...]
    load_model: Any  # Callable[[int], torch.nn.Module]
    device: str = "cpu"

    @property
    def run_dir(self) -> str:
        """Deprecated name of ``location``."""
        warnings.warn("RunContext.run_dir is deprecated; use RunContext.location",
                      DeprecationWarning, stacklevel=2)
        return self.location


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
    load_state_dict
        ``load_state_dict(epoch)`` returns the model weights of another checkpoint of the run
        (e.g. the first, for a distance from initialisation), cached per process; ``None``
        where no run is at hand.
    """

    epoch: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    config: Mapping[str, JSONValue] = field(default_factory=dict)
    params: Mapping[str, JSONValue] = field(default_factory=dict)
    device: str = "cpu"
    load_state_dict: Callable[[int], Mapping[str, torch.Tensor]] | None = None


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

    Notes
    -----
    An analyzer may also have a ``captures`` attribute, a tuple of module names (as
    ``model.get_submodule`` takes them, e.g. ``"blocks.0.mlp.hook_post"``): the pipeline then
    records those modules' outputs with forward hooks during the family's one forward pass and
    adds them to the cache under the module names (a key the family's cache already holds is
    kept, as TransformerLens caches hold the same tensors under the same names).
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


class AnalyzerBase:
    """A base class for :class:`Analyzer` implementations: no run-level parameters, a plain repr.

    A subclass sets ``name``, ``version`` and ``fields`` and writes ``compute``; it overrides
    ``prepare`` when it has run-level parameters, and ``__repr__`` when it takes arguments.

    Examples
    --------
    >>> class Zero(AnalyzerBase):
    ...     name, version, fields = "zero", "1", {"value": FieldSpec(())}
    ...     def compute(self, model, cache, probe, context):
    ...         return {"value": 0.0}
    >>> Zero(), Zero().prepare(None), isinstance(Zero(), Analyzer)
    (Zero(), {}, True)
    """

    name: str
    version: str
    fields: Mapping[str, FieldSpec]

    def prepare(self, run: RunContext) -> Mapping[str, JSONValue]:
        """Return ``{}``: no run-level parameters."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_analyzer(analyzer: Analyzer) -> Analyzer:
    """Validate an analyzer's name, version and field names; return it unchanged.

    Raises
    ------
    InvalidNameError
        If the name or a field name is not ``[a-z][a-z0-9_]*``.
    InvalidVersionError
        If ``version`` is missing or not a non-empty string.
    """
    validate_name(analyzer.name, "analyzer name")
    version = getattr(analyzer, "version", None)
    if not isinstance(version, str) or not version.strip():
        raise InvalidVersionError(
            f"analyzer {analyzer.name!r} ({type(analyzer).__qualname__}) has version "
            f"{version!r}; give it a non-empty string attribute, e.g. version = \"1\", and "
            "change it whenever its computation changes (stored results of another version "
            "are not mixed with new ones)"
        )
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
    the variant summary; a family without it declares none). A family may also have a
    ``for_run(location, storage_options)`` method returning the family bound to one run (for a
    family that keeps something in the run directory, like the recorded probe of ``"torch"``);
    the pipeline calls it when present.

    Multi-process analysis (``workers > 1``, Dask) sends the family and its analyzers to other
    processes by pickling, so their classes must live in an importable module, not in
    ``__main__`` (a notebook or a script run as such).

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
        location: str,
        config: Mapping[str, Any],
        *,
        progress: Callable[[int, Mapping[str, float]], None] | None = None,
    ) -> None:
        """Train a run into ``location``, saving checkpoints with ``CheckpointManager``."""
        ...


@dataclass(frozen=True)
class StoredField:
    """One field of an analyzer as its manifest records it: what default views are chosen from.

    Attributes
    ----------
    analyzer, name
        The analyzer and the field.
    dims, shape
        Dimension names and sizes of one epoch's array (``()`` for a scalar).
    dtype
        NumPy dtype string.
    chunks
        The chunk shape of one epoch (what one read fetches).
    """

    analyzer: str
    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str = "float32"
    chunks: tuple[int, ...] = ()


@runtime_checkable
class ViewSource(Protocol):
    """What a view reads through: one run's artifacts, with the dashboard's caches behind it.

    :class:`epochstore.viz.RunSource` implements it over an
    :class:`~epochstore.store.ArtifactLoader`. Views read only through it, so the dashboard can
    count, cache and share reads (two views of one chunk read it once).
    """

    @property
    def location(self) -> str:
        """Where the run lives: its directory or URL."""
        ...

    def analyzers(self) -> Mapping[str, Sequence[int]]:
        """Each analyzer the run holds and its committed epochs (metadata only)."""
        ...

    def fields(self, analyzer: str) -> Mapping[str, StoredField]:
        """The fields of ``analyzer`` (from its manifest)."""
        ...

    def params(self, analyzer: str) -> Mapping[str, JSONValue]:
        """The run-level parameters ``analyzer`` recorded (its ``prepare`` result)."""
        ...

    def load_epoch(self, analyzer: str, epoch: int) -> Any:
        """One epoch of an analyzer as a lazy ``xarray.Dataset``: read what you draw."""
        ...

    def load_block(self, analyzer: str, epoch: int, field: str, dim: str, index: int,
                   size: int | None = None) -> Any:
        """The block of ``field`` along ``dim`` that holds ``index``, in memory.

        An ``xarray.DataArray`` labelled along ``dim``, inside one chunk, at most ``size``
        long (default the chunk); cached, so views of one slice share one read.
        """
        ...

    def load_series(
        self,
        analyzer: str,
        fields: Sequence[str],
        *,
        select: Mapping[str, int] | None = None,
        norm: bool = False,
    ) -> Any:
        """``fields`` of every epoch stacked along ``epoch``, in memory (an ``xarray.Dataset``).

        ``select`` keeps one index of those dims (kept as length-1 dims, labelled); ``norm``
        reduces each epoch's array to its L2 norm, one epoch in memory at a time. Cached: a new
        epoch is read on its own.
        """
        ...

    def checkpoint_metrics(self) -> Any:
        """The metrics recorded with each checkpoint, stacked along ``epoch``, or ``None``."""
        ...


Scope = Literal["epoch", "across"]


@runtime_checkable
class View(Protocol):
    """A figure drawn from stored artifacts: at the slider's epoch, or across epochs.

    Every analyzer field gets default views from its manifest alone
    (:func:`epochstore.viz.default_views`). A family, or an analyzer, may declare better ones
    with a ``views()`` method returning a sequence of views (see :class:`DeclaresViews`); a
    declared view replaces a default view of the same name, and analyzers that a declared view
    reads get no default views.

    Attributes
    ----------
    name
        Unique among a run's views, ``[a-z][a-z0-9_]*`` (the dashboard's element ids).
    title
        What the figure shows, naming the analyzer and field (a placeholder's title).
    analyzers
        The analyzers it reads; the view is offered only for runs that hold them all.
    scope
        ``"epoch"``: drawn at the selected epoch; ``"across"``: over all epochs (the selected
        epoch is marked).
    picks
        The dims it takes an index of from ``selection`` (the dashboard shows one picker per
        dim, shared by every view that picks it, as the neuron picker).
    """

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def analyzers(self) -> tuple[str, ...]: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def picks(self) -> tuple[str, ...]: ...

    def render(
        self, source: ViewSource, epoch: int | None, selection: Mapping[str, int]
    ) -> go.Figure:
        """Draw the figure; ``selection`` maps a picked dim (e.g. ``"neuron"``) to an index.

        ``epoch`` is the epoch to draw (``"epoch"`` views; the caller checked that every
        analyzer has it) or to mark (``"across"`` views; ``None`` for no marker). A picked
        index missing from ``selection`` is 0.
        """
        ...


@runtime_checkable
class DeclaresViews(Protocol):
    """The optional hook of a family or an analyzer: ``views()`` returns its own views.

    Called where a run is shown (``epochstore serve``, ``epochstore report``), so it must be
    cheap and import no model code (no torch): return view objects whose module imports only
    plotting and NumPy.
    """

    def views(self) -> Sequence[View]:
        """The declared views, in display order."""
        ...
