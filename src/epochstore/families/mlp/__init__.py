"""Modulo Addition MLP: ``(a + b) mod p`` learned by a 2-layer MLP on learned embeddings.

The grokking setting of Liu et al. (2022, "Towards understanding grokking") and Gromov (2023,
"Grokking modular arithmetic"), as a second built-in family that uses only the plug-in
interface: it registers as ``"modadd_mlp"`` through the ``epochstore.families`` entry point,
imports no other family, and shares the Fourier code in :mod:`epochstore.analysis.fourier`::

    epochstore train runs/mlp --family modadd_mlp
    epochstore analyze runs/mlp
"""

from __future__ import annotations

from epochstore.families.mlp.analyzers import (
    EmbeddingFourier,
    NeuronFrequencies,
    TrainingMetrics,
    default_analyzers,
)
from epochstore.families.mlp.config import PRESETS, MLPConfig
from epochstore.families.mlp.data import GridData, make_data
from epochstore.families.mlp.family import ModAddMLPFamily
from epochstore.families.mlp.model import ModAddMLP, build_model
from epochstore.families.mlp.train import FAMILY_NAME, evaluate, train_run

__all__ = [
    "FAMILY_NAME",
    "PRESETS",
    "EmbeddingFourier",
    "GridData",
    "MLPConfig",
    "ModAddMLP",
    "ModAddMLPFamily",
    "NeuronFrequencies",
    "TrainingMetrics",
    "build_model",
    "default_analyzers",
    "evaluate",
    "make_data",
    "train_run",
]
