"""Modulo Addition 1-Layer: the grokking transformer of Nanda et al. (2023).

The family registers as ``"modadd"`` through the ``epochstore.families`` entry point::

    from epochstore.families import get_family
    family = get_family("modadd")
"""

from __future__ import annotations

from epochstore.analysis.fourier import fourier_basis, fourier_labels
from epochstore.families.modadd.analyzers import (
    DominantFrequencies,
    NeuronActivations,
    NeuronFreqNorm,
    ProgressMeasures,
    TrainingMetrics,
    default_analyzers,
)
from epochstore.families.modadd.config import PRESETS, ModAddConfig, get_preset
from epochstore.families.modadd.data import ModAddData, make_data
from epochstore.families.modadd.family import ModAddFamily
from epochstore.families.modadd.model import ModAddTransformer, build_model
from epochstore.families.modadd.train import train_run

__all__ = [
    "PRESETS",
    "DominantFrequencies",
    "ModAddConfig",
    "ModAddData",
    "ModAddFamily",
    "ModAddTransformer",
    "NeuronActivations",
    "NeuronFreqNorm",
    "ProgressMeasures",
    "TrainingMetrics",
    "build_model",
    "default_analyzers",
    "fourier_basis",
    "fourier_labels",
    "get_preset",
    "make_data",
    "train_run",
]
