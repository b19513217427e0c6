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
    "EpochContext",
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


@runtime_checkable
class ModelFamily(Protocol):
    """A family of models whose runs epochstore trains and analyses.

    A family knows how to build its model from a config, make its analysis probe, run the model
    with an activation cache, train it while saving checkpoints, and which analyzers apply.
    Families are found through the ``epochstore.families`` entry-point group (see
    :mod:`epochstore.plugins`) or registered in a notebook with
    :func:`epochstore.plugins.register_family`. A family may also declare its own views with a
    ``views()`` method returning a sequence of :class:`View`, and may have a
    ``for_run(run_dir, storage_options)`` method returning the family bound to one run (for
    a family that keeps something in the run directory, like the recorded probe of
    ``"torch"``); the pipeline calls it when present.

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
