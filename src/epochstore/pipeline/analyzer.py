"""The analyzer plug-in interface: what one analysis computes for one epoch.

An analyzer is a small object with a ``name``, the ``fields`` it outputs (with their dims), and
``compute(model, cache, probe, context)`` returning one array per field. Optional ``prepare``
computes run-level parameters once (e.g. the key frequencies of the final checkpoint); they are
recorded in the analyzer's group attributes and handed to every ``compute`` call, so parallel
workers need no shared state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from epochstore.naming import validate_name

if TYPE_CHECKING:
    import numpy as np
    import torch

    from epochstore.families.base import ModelFamily

__all__ = ["Analyzer", "EpochContext", "FieldSpec", "RunContext"]

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
