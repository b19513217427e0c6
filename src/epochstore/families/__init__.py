"""The built-in model families, each a plug-in like any other.

Each family lives in its own subpackage and registers through the ``epochstore.families`` entry
point (see :mod:`epochstore.plugins`); families never import each other. The contracts are in
:mod:`epochstore.interface`. ``family_names``, ``get_family`` and ``register_family`` are
re-exported here from :mod:`epochstore.plugins` for convenience.
"""

from __future__ import annotations

from epochstore.interface import ModelFamily
from epochstore.plugins import family_names, get_family, register_family

__all__ = ["ModelFamily", "family_names", "get_family", "register_family"]
