"""The model-family plug-in interface and its registry.

A *family* (e.g. Modulo Addition 1-Layer) knows how to build its model from a config, make its
training data and its analysis probe, run the model with an activation cache, train it while
saving checkpoints, and which analyzers apply to it. Users add a family by implementing
:class:`ModelFamily` and calling :func:`register_family`; nothing in epochstore changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from epochstore.errors import FamilyNotFoundError
from epochstore.naming import validate_name

if TYPE_CHECKING:
    import torch

    from epochstore.pipeline.analyzer import Analyzer

__all__ = ["ModelFamily", "family_names", "get_family", "register_family"]


@runtime_checkable
class ModelFamily(Protocol):
    """A family of models whose runs epochstore trains and analyses.

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


_REGISTRY: dict[str, Callable[[], ModelFamily]] = {}


def register_family(name: str, factory: Callable[[], ModelFamily]) -> None:
    """Register a model family under ``name`` (a factory, so importing stays cheap)."""
    _REGISTRY[validate_name(name, "family name")] = factory


def family_names() -> list[str]:
    """Return the registered family names, sorted."""
    _load_builtin_families()
    return sorted(_REGISTRY)


def get_family(name: str) -> ModelFamily:
    """Return a new instance of the family registered under ``name``.

    Raises
    ------
    FamilyNotFoundError
        If no family is registered under ``name`` (the message lists the known ones).
    """
    _load_builtin_families()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise FamilyNotFoundError(
            f"unknown model family {name!r}; registered families: {sorted(_REGISTRY)}. "
            "Register your own with epochstore.families.register_family(name, factory)."
        ) from None
    return factory()


def _load_builtin_families() -> None:
    # Imported lazily: the built-in families import torch-heavy modules.
    from epochstore.families import modadd  # noqa: F401
    from epochstore.testing import toy  # noqa: F401
