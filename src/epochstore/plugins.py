"""Finding model families: the ``epochstore.families`` entry points and notebook registrations.

A package adds a family the way an xarray backend adds an engine, in its ``pyproject.toml``::

    [project.entry-points."epochstore.families"]
    myfamily = "mypkg.family:MyFamily"

The value is a zero-argument callable (usually the family class) returning a
:class:`~epochstore.interface.ModelFamily`. The built-in families register the same way. Listing
names reads installed metadata only: nothing is imported (no torch) until a family is used. In a
notebook, :func:`register_family` adds one for this process (it wins over an entry point of the
same name). A plug-in that fails to load raises :class:`~epochstore.errors.FamilyNotFoundError`
for its own runs and a warning naming it where families are only listed; other runs are
unaffected.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from epochstore.errors import EpochstoreWarning, FamilyNotFoundError
from epochstore.naming import validate_name

if TYPE_CHECKING:
    from epochstore.interface import ModelFamily

__all__ = [
    "ENTRY_POINT_GROUP",
    "family_names",
    "get_family",
    "load_families",
    "register_family",
]

#: The entry-point group families register in.
ENTRY_POINT_GROUP = "epochstore.families"

_REGISTERED: dict[str, Callable[[], ModelFamily]] = {}


def register_family(name: str, factory: Callable[[], ModelFamily]) -> None:
    """Register a model family for this process (a notebook's or a test's own family).

    Parameters
    ----------
    name
        The family name, ``[a-z][a-z0-9_]*``; it wins over an installed entry point of that name.
    factory
        A zero-argument callable returning the family (the class itself, typically).

    Notes
    -----
    A family registered here exists in this process only: ``AnalysisPipeline.run(workers=1)``
    uses it; worker processes receive the family object pickled, so its class must live in an
    importable module (not ``__main__`` or a notebook cell) for ``workers > 1`` or Dask.
    """
    _REGISTERED[validate_name(name, "family name")] = factory


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def family_names() -> list[str]:
    """Return the names of every registered and installed family, sorted (imports nothing)."""
    return sorted({*_REGISTERED, *_entry_points()})


def get_family(name: str) -> ModelFamily:
    """Return a new instance of the family ``name``.

    Raises
    ------
    FamilyNotFoundError
        If no family has that name (the message lists the known ones and how to add one), or
        if its plug-in fails to load (the message names the entry point and the error).
    """
    factory = _REGISTERED.get(name)
    if factory is None:
        entry_point = _entry_points().get(name)
        if entry_point is None:
            raise FamilyNotFoundError(
                f"unknown model family {name!r}; known families: {family_names()}. Install the "
                f"package that provides it (entry point group {ENTRY_POINT_GROUP!r}), or call "
                "epochstore.plugins.register_family(name, factory) in this process."
            )
        try:
            factory = entry_point.load()
        except Exception as exc:
            raise FamilyNotFoundError(
                f"the model family plug-in {name!r} ({entry_point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}. Reinstall or fix the package that provides it."
            ) from exc
    try:
        family = factory()
    except Exception as exc:
        raise FamilyNotFoundError(
            f"the model family {name!r} failed to initialise: {type(exc).__name__}: {exc}"
        ) from exc
    return family


def load_families() -> dict[str, ModelFamily]:
    """Return every family that loads, warning (never raising) about each one that does not.

    For places that show many runs (``epochstore ls``, ``serve``): a broken plug-in costs its
    own runs their family-specific views, nothing else.
    """
    families: dict[str, ModelFamily] = {}
    for name in family_names():
        try:
            families[name] = get_family(name)
        except FamilyNotFoundError as exc:
            warnings.warn(str(exc), EpochstoreWarning, stacklevel=2)
    return families
