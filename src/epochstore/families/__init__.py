"""Model families: the plug-in interface, its registry and the built-in families.

A *family* knows its model, training data, analysis probe and analyzers (see
:class:`ModelFamily`). Add your own with :func:`register_family`; the built-in ``modadd`` family
(Modulo Addition 1-Layer) is registered the first time the registry is consulted.
"""

from __future__ import annotations

from epochstore.families.base import ModelFamily, family_names, get_family, register_family

__all__ = ["ModelFamily", "family_names", "get_family", "register_family"]
