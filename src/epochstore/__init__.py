"""epochstore: store and analyse what a model training run produces, one epoch at a time.

The public names load on first use (``lazy_loader``, the scientific-python convention), so
``import epochstore`` stays fast and imports no torch, Dash or plotly: a notebook that only reads
a store never pays for them. ``__init__.pyi`` is the one list of the public API.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
