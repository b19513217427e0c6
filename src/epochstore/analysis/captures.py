"""Activations of named modules on the probe, captured with forward hooks, stored per epoch.

A :class:`CapturedActivations` analyzer names one module (``"hidden"``, ``"blocks.0.mlp"``, a
TransformerLens hook point such as ``"blocks.0.mlp.hook_post"``); the pipeline records that
module's output during the family's forward pass (see ``captures`` in
:class:`~epochstore.interface.Analyzer`) and the analyzer stores it with its real shape. Use
:func:`capture_analyzers` to build them: it runs the probe once to learn each output's shape,
and refuses a capture that would be huge before anything is computed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from epochstore.errors import EpochstoreError
from epochstore.interface import AnalyzerBase, FieldSpec
from epochstore.naming import validate_name

if TYPE_CHECKING:
    import torch

    from epochstore.interface import EpochContext, JSONValue, ModelFamily, RunContext

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CaptureTooLargeError",
    "CapturedActivations",
    "capture_analyzers",
    "capture_name",
]

#: The largest capture stored per epoch by default (one field), in bytes.
DEFAULT_MAX_BYTES: Final = 64 * 2**20

Array = npt.NDArray[Any]


class CaptureTooLargeError(EpochstoreError, ValueError):
    """A captured activation would exceed the per-field size limit."""


def capture_name(module: str) -> str:
    """The analyzer name of a module's capture: ``"blocks.0.mlp.hook_post"`` ->
    ``"capture_blocks_0_mlp_hook_post"``.

    Examples
    --------
    >>> capture_name("blocks.0.mlp.hook_post")
    'capture_blocks_0_mlp_hook_post'
    """
    slug = re.sub(r"[^a-z0-9]+", "_", module.lower()).strip("_")
    return validate_name(f"capture_{slug}" if slug else "capture", "capture analyzer name")


def _check_size(module: str, shape: Sequence[int], max_bytes: int) -> None:
    size = math.prod(shape) * np.dtype(np.float32).itemsize
    if size > max_bytes:
        raise CaptureTooLargeError(
            f"capturing module {module!r} would store {size / 2**20:.1f} MiB per epoch "
            f"(shape {tuple(shape)}, float32), over the limit of {max_bytes / 2**20:.1f} MiB "
            "per field: capture a smaller module, record a smaller probe "
            "(epochstore.record_model(..., probe=...)), or raise the limit "
            "(`epochstore analyze --capture-max-mb N`, or capture_analyzers(max_bytes=...))"
        )


class CapturedActivations(AnalyzerBase):
    """The output of one module on the probe, as float32 with its real shape.

    Parameters
    ----------
    module
        The module's name in the model (``model.get_submodule(module)``).
    dims
        One name per axis of the output; the first is usually the probe's batch (``sample``).
    max_bytes
        Refuse (:class:`CaptureTooLargeError`) an output larger than this.

    Attributes
    ----------
    captures
        ``(module,)``: what the pipeline records with a forward hook for this analyzer.
    """

    version = "1"

    def __init__(
        self, module: str, dims: Sequence[str], *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.module = module
        self.name = capture_name(module)
        self.captures: tuple[str, ...] = (module,)
        self.max_bytes = max_bytes
        # A dict, not a MappingProxyType: the analyzer is pickled to worker processes.
        self.fields: Mapping[str, FieldSpec] = {
            "activations": FieldSpec(tuple(dims), "float32", f"output of module {module!r}")
        }

    def __repr__(self) -> str:
        return f"CapturedActivations({self.module!r}, dims={self.fields['activations'].dims})"

    def prepare(self, run: RunContext) -> Mapping[str, JSONValue]:
        """Record the module's name (the analyzer name is only its slug)."""
        return {"module": self.module}

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return ``activations``: the module's output in the cache, as float32."""
        import torch

        try:
            output = cache[self.module]
        except KeyError:
            raise KeyError(
                f"the activation cache has no {self.module!r}: run this analyzer through "
                "AnalysisPipeline, which records the modules in its `captures`"
            ) from None
        _check_size(self.module, tuple(output.shape), self.max_bytes)
        return {"activations": output.detach().to("cpu", torch.float32).numpy()}


def _default_dims(ndim: int) -> tuple[str, ...]:
    return ("sample", *(f"dim_{i}" for i in range(1, ndim)))[:ndim]


def capture_analyzers(
    family: ModelFamily,
    config: Mapping[str, Any],
    modules: Sequence[str],
    *,
    device: str = "cpu",
    max_bytes: int = DEFAULT_MAX_BYTES,
    dims: Mapping[str, Sequence[str]] | None = None,
) -> list[CapturedActivations]:
    """Build one :class:`CapturedActivations` per module, shaped by one forward pass.

    A freshly built model of ``config`` runs the family's probe once (the shapes do not
    depend on the weights), so a wrong name or a huge capture fails here, before any
    checkpoint is analysed.

    Parameters
    ----------
    family
        The run's family (bound to the run, as :class:`~epochstore.AnalysisPipeline` has it).
    config
        The variant's parameters.
    modules
        Module names, e.g. ``["hidden"]`` or ``["blocks.0.mlp.hook_post"]``.
    device
        Torch device of the trial forward pass.
    max_bytes
        The per-field limit of one epoch's capture.
    dims
        Dimension names per module (default ``("sample", "dim_1", ...)``).

    Raises
    ------
    ModuleNotFoundInModelError
        If a name is not a module of the model (the message lists them).
    CaptureTooLargeError
        If a capture would exceed ``max_bytes`` per epoch (the message names the fixes).
    """
    import torch

    from epochstore.pipeline.hooks import record_outputs

    if len(set(modules)) != len(modules):
        raise ValueError(
            f"modules to capture are listed twice: {list(modules)}; list each module once"
        )
    names: dict[str, str] = {}
    for module in modules:
        if (other := names.setdefault(capture_name(module), module)) != module:
            raise ValueError(
                f"modules {other!r} and {module!r} would both be stored as analyzer "
                f"{capture_name(module)!r}; capture only one of them"
            )
    model = family.build_model(config).to(device).eval()
    probe = family.make_probe(config, device=device)
    with torch.no_grad(), record_outputs(model, modules) as outputs:
        family.run_with_cache(model, probe)
    analyzers = []
    for module in modules:
        if module not in outputs:
            raise EpochstoreError(
                f"module {module!r} produced no tensor when {type(model).__name__} ran on the "
                f"probe of family {family.name!r}; capture a module that runs on the probe"
            )
        shape = tuple(outputs[module].shape)
        _check_size(module, shape, max_bytes)
        module_dims = tuple(dims[module]) if dims and module in dims else _default_dims(len(shape))
        if len(module_dims) != len(shape):
            raise ValueError(
                f"dims {module_dims} of module {module!r} name {len(module_dims)} axes, its "
                f"output has shape {shape}"
            )
        analyzers.append(CapturedActivations(module, module_dims, max_bytes=max_bytes))
    return analyzers
