"""modadd's Fourier names, re-exported from :mod:`epochstore.analysis.fourier`.

The code lives in that neutral module (the families of modular arithmetic share it); this keeps
``epochstore.families.modadd.fourier_basis`` and ``fourier_labels``, which docs/families/modadd.md
shows, working.
"""

from __future__ import annotations

from epochstore.analysis.fourier import (
    fourier_basis,
    fourier_labels,
    frequency_norms,
    gini,
    neuron_frequency_fractions,
)

__all__ = [
    "fourier_basis",
    "fourier_labels",
    "frequency_norms",
    "gini",
    "neuron_frequency_fractions",
]
