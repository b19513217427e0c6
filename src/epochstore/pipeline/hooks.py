"""Recording the outputs of named modules with forward hooks (for analyzers' ``captures``).

Any ``torch.nn.Module`` can be observed this way without changing its code; TransformerLens'
hook points (``blocks.0.mlp.hook_post``) are modules too. Imported only when a run captures
something, so it may import torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from typing import Any

import torch

from epochstore.errors import EpochstoreError

__all__ = ["ModuleNotFoundInModelError", "record_outputs", "resolve_modules"]


class ModuleNotFoundInModelError(EpochstoreError, KeyError):
    """A module name to capture is not a submodule of the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def resolve_modules(model: torch.nn.Module, names: Collection[str]) -> dict[str, torch.nn.Module]:
    """Return ``{name: model.get_submodule(name)}`` for every name.

    Raises
    ------
    ModuleNotFoundInModelError
        If a name is not a submodule; the message lists the model's module names.
    """
    known = [name for name, _ in model.named_modules() if name]
    modules: dict[str, torch.nn.Module] = {}
    for name in names:
        try:
            modules[name] = model.get_submodule(name)
        except AttributeError:
            shown = ", ".join(known[:40]) + (", ..." if len(known) > 40 else "")
            raise ModuleNotFoundInModelError(
                f"{type(model).__name__} has no module {name!r}; capture one of its modules "
                f"(model.named_modules()): {shown or 'it has no submodules'}"
            ) from None
    return modules


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]  # e.g. nn.MultiheadAttention, nn.LSTM: the main output comes first
    return None


@contextlib.contextmanager
def record_outputs(
    model: torch.nn.Module, names: Collection[str]
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the (detached) outputs of the named modules while the block runs.

    Parameters
    ----------
    model
        The model whose submodules are observed.
    names
        Module names as ``model.get_submodule`` takes them.

    Yields
    ------
    dict
        Filled with ``{name: output}`` as the modules run (a module run twice keeps its last
        output; a module whose output is a tuple contributes its first element).

    Raises
    ------
    ModuleNotFoundInModelError
        If a name is not a submodule of ``model``.
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            tensor = _first_tensor(output)
            if tensor is not None:
                outputs[name] = tensor.detach()

        return hook

    try:
        for name, module in resolve_modules(model, names).items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
