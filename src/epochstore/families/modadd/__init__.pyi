"""Type stub of :mod:`epochstore.families.modadd`: its public names, loaded lazily."""

from .analyzers import (
    DominantFrequencies,
    NeuronActivations,
    NeuronFreqNorm,
    ProgressMeasures,
    TrainingMetrics,
    default_analyzers,
)
from .config import PRESETS, ModAddConfig, get_preset
from .data import ModAddData, make_data
from .family import ModAddFamily
from .model import ModAddTransformer, build_model
from .train import train_run

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
    "get_preset",
    "make_data",
    "train_run",
]
