"""Analyzers of the modular-addition MLP: its embedding and hidden neurons in the Fourier basis.

The probe is the full grid (:class:`~epochstore.families.mlp.data.GridData`, row
``a * p + b``). Dims: ``fourier_component`` (the ``p`` rows of
:func:`~epochstore.analysis.fourier.fourier_basis`: const, sin 1, cos 1, ...), ``frequency``
(``p // 2``; index ``i`` is frequency ``i + 1``), ``neuron`` (``d_hidden``).

After grokking, the embedding concentrates on a few frequencies and each hidden neuron responds
to one of them (Gromov 2023; Liu et al. 2022): ``embedding_fourier`` and ``neuron_frequencies``
show it forming.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from epochstore.analysis.fourier import fourier_basis, frequency_norms, neuron_frequency_fractions
from epochstore.families.mlp.data import GridData
from epochstore.interface import AnalyzerBase, FieldSpec

if TYPE_CHECKING:
    from epochstore.interface import Analyzer, EpochContext

__all__ = [
    "EmbeddingFourier",
    "NeuronFrequencies",
    "TrainingMetrics",
    "default_analyzers",
    "embedding_fourier_norms",
    "hidden_grid",
]

Array = npt.NDArray[Any]


def _grid(probe: Any) -> GridData:
    if not isinstance(probe, GridData):
        raise TypeError(
            f"modadd_mlp analyzers need the family's probe (GridData), got {type(probe).__name__}"
        )
    return probe


def embedding_fourier_norms(model: nn.Module, p: int) -> Array:
    """``coefficients[i] = || F[i] @ E ||`` for the ``(p, d_embed)`` embedding ``E``: ``(p,)``."""
    embedding = model.get_parameter("embed.weight").detach().to("cpu", torch.float64).numpy()
    result: Array = np.linalg.norm(fourier_basis(p) @ embedding, axis=1)
    return result


def hidden_grid(cache: Mapping[str, torch.Tensor], p: int) -> Array:
    """The hidden (post-ReLU) activations over the grid as ``(d_hidden, p, p)`` (neuron, a, b)."""
    hidden = cache["hidden"]
    if hidden.shape[0] != p * p:
        raise ValueError(f"expected the full grid of {p * p} rows, got {hidden.shape[0]}")
    result: Array = hidden.to("cpu", torch.float64).numpy().T.reshape(-1, p, p)
    return result


class EmbeddingFourier(AnalyzerBase):
    """The shared embedding of ``a`` and ``b`` in the Fourier basis of Z_p.

    ``coefficients[i] = || F[i] @ E ||_2`` and ``frequency_norms[k - 1] =
    sqrt(coefficients[2k-1]^2 + coefficients[2k]^2)``.
    """

    name = "embedding_fourier"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "coefficients": FieldSpec(
                ("fourier_component",), "float32", "norm of the embedding along each basis row"
            ),
            "frequency_norms": FieldSpec(
                ("frequency",), "float32", "sqrt(sin_k^2 + cos_k^2); index i is frequency i + 1"
            ),
        }
    )

    def compute(
        self, model: nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return ``coefficients`` ``(p,)`` and ``frequency_norms`` ``(p // 2,)``."""
        coefficients = embedding_fourier_norms(model, _grid(probe).p)
        return {
            "coefficients": coefficients.astype(np.float32),
            "frequency_norms": frequency_norms(coefficients).astype(np.float32),
        }


class NeuronFrequencies(AnalyzerBase):
    """How much of each hidden neuron's variation over the grid lies in each frequency.

    ``norm_matrix[k - 1, n]`` is the fraction of neuron ``n``'s DC-removed 2-D Fourier energy
    in frequency ``k`` (see
    :func:`~epochstore.analysis.fourier.neuron_frequency_fractions`);
    ``dominant_frequency[n]`` its largest (0 for a neuron with no variation) and
    ``dominant_fraction[n]`` that fraction.
    """

    name = "neuron_frequencies"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "norm_matrix": FieldSpec(
                ("frequency", "neuron"), "float32",
                "fraction of the neuron's DC-removed Fourier energy in frequency i + 1",
            ),
            "dominant_frequency": FieldSpec(
                ("neuron",), "int32", "frequency with the largest fraction (0: no variation)"
            ),
            "dominant_fraction": FieldSpec(("neuron",), "float32", "that largest fraction"),
        }
    )

    def compute(
        self, model: nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return ``norm_matrix`` ``(p // 2, d_hidden)`` and the dominant frequency/fraction."""
        fractions = neuron_frequency_fractions(hidden_grid(cache, _grid(probe).p))
        best = fractions.max(axis=0)
        return {
            "norm_matrix": fractions.astype(np.float32),
            "dominant_frequency": np.where(best > 0, fractions.argmax(axis=0) + 1, 0).astype(
                np.int32
            ),
            "dominant_fraction": best.astype(np.float32),
        }


class TrainingMetrics(AnalyzerBase):
    """Train/test loss and accuracy, recomputed from the logits on the grid."""

    name = "training_metrics"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            name: FieldSpec((), "float64", description)
            for name, description in (
                ("train_loss", "cross-entropy on the training pairs"),
                ("test_loss", "cross-entropy on the held-out pairs"),
                ("train_accuracy", "accuracy on the training pairs"),
                ("test_accuracy", "accuracy on the held-out pairs"),
            )
        }
    )

    def compute(
        self, model: nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return the four scalars."""
        grid = _grid(probe)
        logits = cache["logits"].to("cpu", torch.float64)
        labels = grid.labels.cpu()
        result = {}
        for split, rows in (("train", grid.train_indices), ("test", grid.test_indices)):
            part = logits[rows.cpu()]
            result[f"{split}_loss"] = np.asarray(
                float(nn.functional.cross_entropy(part, labels[rows.cpu()]))
            )
            result[f"{split}_accuracy"] = np.asarray(
                float((part.argmax(dim=1) == labels[rows.cpu()]).double().mean())
            )
        return result


def default_analyzers() -> list[Analyzer]:
    """The family's analyzers and the generic ``parameter_stats``, in a stable order."""
    from epochstore.analysis.parameters import ParameterStats

    return [EmbeddingFourier(), NeuronFrequencies(), TrainingMetrics(), ParameterStats()]
