"""Analyses that need nothing model-specific, usable by every family.

- :mod:`epochstore.analysis.parameters`: :class:`ParameterStats`, statistics of every parameter
  tensor (norm, RMS, distance from the first checkpoint, singular values of 2-D weights);
- :mod:`epochstore.analysis.captures`: :class:`CapturedActivations`, the outputs of named
  modules on the probe, recorded with forward hooks (TransformerLens hook points included);
- :mod:`epochstore.analysis.fourier`: the Fourier basis of Z_p and the quantities the families
  of modular arithmetic share.

This package sits beside the families (it implements :mod:`epochstore.interface`; families
import it, it imports no family). Its modules import torch only where they compute, so listing
analyzers stays light.
"""

from __future__ import annotations

__all__: list[str] = []
