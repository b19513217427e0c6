"""State dicts as safetensors tensors + canonical JSON, and back, without pickle.

Tensors move to dotted keys and leave ``{"__tensor__": key}``; the other tags and tied weights:
"File format" in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import json
import math
import numbers
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = [
    "HasStateDict",
    "canonical_json",
    "capture_rng_state",
    "decode_json",
    "decode_tree",
    "deduplicate",
    "encode_json",
    "encode_tree",
    "normalise_metrics",
    "resolve_aliases",
    "restore_rng_state",
    "state_dict_of",
]

_TENSOR: Final = "__tensor__"
_NDARRAY: Final = "__ndarray__"
_TUPLE: Final = "__tuple__"
_DICT: Final = "__dict__"
_FLOAT: Final = "__float__"
_TAGS: Final = frozenset({_TENSOR, _NDARRAY, _TUPLE, _DICT, _FLOAT})


class HasStateDict(Protocol):
    """Anything with a ``state_dict()``: modules, optimizers, LR schedulers."""

    def state_dict(self) -> Mapping[str, Any]: ...  # pragma: no cover - protocol


def state_dict_of(obj: HasStateDict | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """Return ``obj`` if it is already a state dict, else ``obj.state_dict()``."""
    if isinstance(obj, Mapping):
        return obj
    state_dict = getattr(obj, "state_dict", None)
    if not callable(state_dict):
        raise TypeError(
            f"{what} must have a state_dict() method or be a state dict (a mapping), "
            f"got {type(obj).__name__}"
        )
    state = state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(f"{what}.state_dict() returned {type(state).__name__}, not a mapping")
    return state


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of an encoded value: sorted keys, compact, strict."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def encode_tree(value: Any, path: str, tensors: MutableMapping[str, Any] | None) -> Any:
    """Return the JSON-ready form of ``value``, moving its tensors to ``path.<key>...`` in
    ``tensors`` (``None`` refuses them: plain data such as config, metrics, checks).

    Anything but tensors, numpy arrays, ``None``, bools, numbers, strings, lists, tuples and
    dicts raises ``TypeError`` naming its path.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):  # non-finite as {"__float__": "nan" | "inf" | "-inf"}
        return number if math.isfinite(number := float(value)) else {_FLOAT: str(number)}
    if isinstance(value, torch.Tensor | np.ndarray):
        if tensors is None:
            raise TypeError(
                f"{path}: a {type(value).__name__} cannot be stored here; only JSON-able "
                f"values (None, bool, numbers, str, lists, tuples, dicts) are allowed"
            )
        key, suffix = path, 1
        while key in tensors:  # two tree paths that print alike ("a.b"+"c" and "a"+"b.c")
            key, suffix = f"{path}~{suffix}", suffix + 1
        if isinstance(value, np.ndarray):
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
            return {_NDARRAY: key}
        tensors[key] = value
        return {_TENSOR: key}
    if isinstance(value, tuple):
        return {_TUPLE: [encode_tree(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_tree(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and not _TAGS & set(value):
            return {k: encode_tree(v, f"{path}.{k}", tensors) for k, v in value.items()}
        return {
            _DICT: [
                [encode_tree(k, f"{path}.<key>", None), encode_tree(v, f"{path}.{k}", tensors)]
                for k, v in value.items()
            ]
        }
    raise TypeError(
        f"{path}: cannot store a {type(value).__name__} in a checkpoint without pickle; "
        f"only tensors, numpy arrays, None, bools, numbers, strings, lists, tuples and dicts "
        f"are stored (convert it in the object's state_dict())"
    )


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def decode_tree(value: Any, tensors: Mapping[str, torch.Tensor] | None = None) -> Any:
    """Invert :func:`encode_tree`, taking tensors from ``tensors`` (``KeyError`` if absent)."""
    if isinstance(value, list):
        return [decode_tree(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in (_TENSOR, _NDARRAY):
            if tensors is None:
                raise KeyError(inner)
            tensor = tensors[inner]
            return tensor.numpy() if tag == _NDARRAY else tensor
        if tag == _TUPLE:
            return tuple(decode_tree(v, tensors) for v in inner)
        if tag == _FLOAT:
            return float(inner)
        if tag == _DICT:
            return {_hashable(decode_tree(k)): decode_tree(v, tensors) for k, v in inner}
    return {k: decode_tree(v, tensors) for k, v in value.items()}


def encode_json(value: Any, what: str) -> str:
    """Return the canonical JSON of a plain value (no tensors); ``what`` names it in errors."""
    return canonical_json(encode_tree(value, what, None))


def decode_json(text: str) -> Any:
    """Invert :func:`encode_json`."""
    return decode_tree(json.loads(text))


def normalise_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Return ``metrics`` as ``{name: float}`` (NaN and inf kept, one-element tensors taken);
    anything but a mapping of names to real numbers raises ``TypeError``."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of str to number, got {type(metrics).__name__}")
    result: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"metric names must be non-empty strings, got {name!r}")
        number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise TypeError(
                f"metric {name!r} must be a real number, got {type(value).__name__}: {value!r}"
            )
        result[name] = float(number)
    return result


def deduplicate(
    tensors: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split tensors into unique ones and aliases (key -> first key holding the same view of
    the same memory: tied weights); tensors that merely overlap are kept apart."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for key, tensor in tensors.items():
        if tensor.layout != torch.strided or tensor.numel() == 0 or tensor.device.type == "meta":
            unique[key] = tensor
            continue
        identity = (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(),
                    tuple(tensor.shape), tensor.stride(), tensor.dtype)
        if identity in seen:
            aliases[key] = seen[identity]
        else:
            seen[identity] = key
            unique[key] = tensor
    return unique, aliases


def resolve_aliases(tensors: MutableMapping[str, torch.Tensor], aliases: Mapping[str, str]) -> None:
    """Add every alias of :func:`deduplicate` back to ``tensors``, as the same object."""
    for alias, target in aliases.items():
        if target in tensors:
            tensors[alias] = tensors[target]


def capture_rng_state() -> dict[str, Any]:
    """Return the state of Python's, NumPy's and torch's (CPU and initialised CUDA) RNGs."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - the legacy global RNG is what we save
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore RNG states captured by ``save(..., rng_state=True)``.

    Parameters
    ----------
    state
        ``checkpoint["rng_state"]`` of a loaded checkpoint. Parts it lacks are left alone.

    Examples
    --------
    >>> import torch
    >>> from epochstore.checkpoints import capture_rng_state, restore_rng_state
    >>> saved = capture_rng_state()
    >>> first = torch.rand(2)
    >>> restore_rng_state(saved)
    >>> bool(torch.equal(first, torch.rand(2)))
    True
    """
    if "python" in state:
        random.setstate(state["python"])
    if "numpy" in state:
        np.random.set_state(state["numpy"])  # noqa: NPY002 - restoring the legacy global RNG
    if "torch" in state:
        torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to("cpu", torch.uint8) for s in state["cuda"]])
