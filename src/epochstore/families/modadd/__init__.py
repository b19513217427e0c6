"""Modulo Addition 1-Layer: the grokking transformer of Nanda et al. (2023).

The family registers as ``"modadd"`` through the ``epochstore.families`` entry point::

    from epochstore.families import get_family
    family = get_family("modadd")

Names load on first use (``lazy_loader``, as in :mod:`epochstore`): importing a submodule such
as :mod:`epochstore.families.modadd.views` (what ``epochstore serve`` loads) imports no torch.
"""

# __init__.pyi lists the public names.
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
