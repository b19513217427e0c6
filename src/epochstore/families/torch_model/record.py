"""Recording how to rebuild a user's model: an importable factory, its arguments and a probe.

``variant.json`` of such a run reads::

    {"family": "torch",
     "params": {"factory": "mypkg.models:make_mlp", "kwargs": {"width": 64},
                "probe": {"file": "probe.safetensors", "kind": "tensor"}}}

The probe is either tensors saved with the run (``probe.safetensors`` beside ``variant.json``)
or a factory ``{"factory": "mypkg.data:probe_batch", "kwargs": {...}}`` called at analysis time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from epochstore.errors import EpochstoreError
from epochstore.run import VARIANT_FILE, Variant, read_variant, write_variant

if TYPE_CHECKING:
    import torch

__all__ = [
    "FAMILY_NAME",
    "PROBE_FILE",
    "call_model",
    "probe_from_tensors",
    "record_model",
    "resolve_callable",
]

#: The family name recorded in ``variant.json``.
FAMILY_NAME: Final = "torch"

#: The probe tensors saved with a run (safetensors, beside ``variant.json``).
PROBE_FILE: Final = "probe.safetensors"

Probe = Any  # torch.Tensor | Mapping[str, torch.Tensor] | Sequence[torch.Tensor]


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    # As `python -m` and uvicorn do: a module beside where the command runs is importable.
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def resolve_callable(spec: str, what: str = "factory") -> Callable[..., Any]:
    """Import ``"package.module:function"`` (the current directory is importable too).

    Raises
    ------
    EpochstoreError
        If the text is not ``module:attribute``, the module does not import, or the attribute
        is missing or not callable; the message says which and how to fix it.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise EpochstoreError(
            f"the {what} {spec!r} must read 'package.module:function', e.g. "
            "'mypkg.models:make_mlp'"
        )
    try:
        with _cwd_on_path():
            target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise EpochstoreError(
            f"cannot import module {module_name!r} of the {what} {spec!r} ({exc}); install the "
            "package that holds it, or run from the directory that holds the module"
        ) from exc
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise EpochstoreError(f"module {module_name!r} has no {attribute!r} (the {what})")
    if not callable(target):
        raise EpochstoreError(f"the {what} {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def _spec_of(factory: str | Callable[..., Any], what: str) -> str:
    if isinstance(factory, str):
        return factory
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", "")
    if not module or module in {"__main__", "__mp_main__"} or "<" in qualname:
        raise EpochstoreError(
            f"the {what} {factory!r} is defined in {module!r} (or inside a function), "
            "which `epochstore analyze` cannot import: define it at the top level of an "
            "importable module and pass it, or its 'package.module:function' name"
        )
    return f"{module}:{qualname}"


def _json(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise EpochstoreError(f"{what} must be JSON-serialisable ({exc})") from None


def _probe_tensors(probe: Probe) -> tuple[str, dict[str, torch.Tensor]]:
    import torch

    if isinstance(probe, torch.Tensor):
        return "tensor", {"input": probe}
    if isinstance(probe, Mapping) and all(isinstance(v, torch.Tensor) for v in probe.values()):
        return "kwargs", dict(probe)
    if isinstance(probe, Sequence) and all(isinstance(v, torch.Tensor) for v in probe):
        return "args", {f"arg_{i}": tensor for i, tensor in enumerate(probe)}
    raise EpochstoreError(
        f"the probe must be a tensor, a mapping of keyword to tensor, a sequence of tensors, or a "
        f"'package.module:function' that returns one; got {type(probe).__name__}"
    )


def probe_from_tensors(kind: str, tensors: Mapping[str, torch.Tensor]) -> Probe:
    """Rebuild the probe saved as ``kind`` (``tensor``, ``kwargs`` or ``args``)."""
    if kind == "tensor":
        return tensors["input"]
    if kind == "kwargs":
        return dict(tensors)
    if kind == "args":
        return tuple(tensors[f"arg_{i}"] for i in range(len(tensors)))
    raise EpochstoreError(f"unknown probe kind {kind!r} in {VARIANT_FILE}")


def call_model(model: torch.nn.Module, probe: Probe) -> Any:
    """Run ``model`` on a probe: ``model(x)``, ``model(**kwargs)`` or ``model(*args)``."""
    if isinstance(probe, Mapping):
        return model(**probe)
    if isinstance(probe, tuple | list):
        return model(*probe)
    return model(probe)


def record_model(
    run: str | os.PathLike[str],
    *,
    factory: str | Callable[..., Any],
    kwargs: Mapping[str, Any] | None = None,
    probe: Probe | str,
    probe_kwargs: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Variant:
    """Record in a run how to rebuild its model and what to analyse it on.

    After this, ``epochstore analyze RUN`` (or ``AnalysisPipeline(RUN)``) analyses the run's
    checkpoints with the generic family ``"torch"``: no family class needed.

    Parameters
    ----------
    run
        The run directory or URL; its checkpoints are in ``<run>/checkpoints``
        (``CheckpointManager(checkpoint_dir=<run>/checkpoints)``).
    factory
        ``"package.module:function"`` (or such a function) returning the ``torch.nn.Module``
        whose ``state_dict`` the checkpoints hold; it must be importable where you analyse.
    kwargs
        Keyword arguments of the factory (JSON-serialisable).
    probe
        What the analyses run the model on: a tensor (``model(x)``), a mapping of tensors
        (``model(**x)``) or a sequence of them (``model(*x)``), saved with the run as
        ``probe.safetensors``; or ``"package.module:function"`` returning one of those.
    probe_kwargs
        Keyword arguments of a probe factory.
    storage_options
        fsspec options when ``run`` is a URL.

    Returns
    -------
    Variant
        What ``variant.json`` now holds.

    Raises
    ------
    EpochstoreError
        If the factory cannot be imported or does not build a ``torch.nn.Module``, the probe is
        not one of the accepted kinds, or the run already records another model.

    Examples
    --------
    >>> record_model("runs/mine", factory="mypkg.models:make_mlp",
    ...              kwargs={"width": 64}, probe=torch.randn(32, 10))  # doctest: +SKIP
    """
    import torch
    from safetensors.torch import save

    from epochstore.location import open_filesystem

    factory_spec = _spec_of(factory, "model factory")
    model_kwargs = _json(dict(kwargs or {}), "kwargs")
    model = resolve_callable(factory_spec, "model factory")(**model_kwargs)
    if not isinstance(model, torch.nn.Module):
        raise EpochstoreError(
            f"the model factory {factory_spec!r} returned {type(model).__name__}, not a "
            "torch.nn.Module"
        )
    fs, root = open_filesystem(run, storage_options)
    probe_data: bytes | None = None
    if isinstance(probe, str) or callable(probe):
        probe_spec: dict[str, Any] = {
            "factory": _spec_of(probe, "probe factory"),
            "kwargs": _json(dict(probe_kwargs or {}), "probe_kwargs"),
        }
        resolve_callable(probe_spec["factory"], "probe factory")
    else:
        kind, tensors = _probe_tensors(probe)
        contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        probe_data = save(contiguous)
        probe_spec = {
            "file": PROBE_FILE,
            "kind": kind,
            "sha256": hashlib.sha256(probe_data).hexdigest(),
        }
    variant = Variant(
        family=FAMILY_NAME,
        params={"factory": factory_spec, "kwargs": model_kwargs, "probe": probe_spec},
    )
    if fs.exists(fs.join(root, VARIANT_FILE)):
        existing = read_variant(run, storage_options=storage_options)
        if existing.family != FAMILY_NAME or dict(existing.params) != dict(variant.params):
            raise EpochstoreError(
                f"{fs.join(root, VARIANT_FILE)} already records another model (family "
                f"{existing.family!r}, params {dict(existing.params)}); record into a new run "
                "directory, or delete variant.json and artifacts/ to start over (results of "
                "another model or probe must not mix with these)"
            )
    fs.makedirs(root)
    if probe_data is not None:
        with fs.atomic_write(fs.join(root, PROBE_FILE)) as out:
            out.write(probe_data)
    write_variant(run, variant, storage_options=storage_options)
    return variant
