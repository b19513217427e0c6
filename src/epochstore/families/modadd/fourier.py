"""Moved to :mod:`epochstore.analysis.fourier` (shared by the families of modular arithmetic).

This re-export only keeps :mod:`epochstore.viz.frequencies` importing until it reads the
labels from the neutral module; nothing else uses it, so it may go as soon as that import does.
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
