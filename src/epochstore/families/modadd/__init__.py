"""Modulo Addition 1-Layer: the grokking transformer of Nanda et al. (2023).

The family registers as ``"modadd"`` through the ``epochstore.families`` entry point::

    from epochstore.families import get_family
    family = get_family("modadd")

Names load on first use (``lazy_loader``, as in :mod:`epochstore`): importing a submodule such
as :mod:`epochstore.families.modadd.views` (what ``epochstore serve`` loads) imports no torch.
``fourier_basis`` and ``fourier_labels`` live in :mod:`epochstore.analysis.fourier`; their old
names here still work, with a ``DeprecationWarning``.
"""

import warnings
from typing import Any

# __init__.pyi lists the public names.
import lazy_loader

_getattr, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

#: Deprecated names: the Fourier basis moved to the neutral epochstore.analysis.fourier.
_MOVED = ("fourier_basis", "fourier_labels")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(f"epochstore.families.modadd.{name} moved to "
                      f"epochstore.analysis.fourier.{name}; the old name will be removed",
                      DeprecationWarning, stacklevel=2)
        from epochstore.analysis import fourier

        return getattr(fourier, name)
    return _getattr(name)
