"""Statistics of every parameter tensor, per checkpoint: a generic analyzer for any torch model.

Fields (``P`` parameters in ``model.named_parameters()`` order, ``M`` of them 2-D, ``K`` the
number of singular values kept):

========================  =====================  ============================================
field                     dims                   value
========================  =====================  ============================================
``norm``                  ``(parameter,)``       Frobenius norm ``||W||``
``rms``                   ``(parameter,)``       ``||W|| / sqrt(numel)``
``distance_from_first``   ``(parameter,)``       ``||W - W_first||``, ``W_first`` from the
                                                 run's first checkpoint (``NaN`` without one)
``effective_rank``        ``(parameter,)``       ``exp(entropy(s / sum(s)))`` of the singular
                                                 values ``s`` of a 2-D weight (Roy & Vetterli
                                                 2007); ``NaN`` for other ranks
``singular_values``       ``(matrix, rank)``     the ``K`` largest singular values of each 2-D
                                                 weight, ``NaN``-padded
========================  =====================  ============================================

The parameter and matrix names are the analyzer's run-level params (``parameters``,
``matrices``), so a view can label the ``parameter`` and ``matrix`` axes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from epochstore.interface import AnalyzerBase, FieldSpec

if TYPE_CHECKING:
    import torch

    from epochstore.interface import EpochContext, JSONValue, RunContext

__all__ = ["ParameterStats", "effective_rank"]

Array = npt.NDArray[Any]


def effective_rank(singular_values: Array) -> float:
    """The entropy effective rank ``exp(-sum p_i log p_i)``, ``p = s / sum(s)``.

    Between 1 (one direction) and the number of non-zero singular values (all equal); 0 for
    an all-zero matrix.

    Examples
    --------
    >>> effective_rank(np.array([1.0, 1.0, 1.0]))
    3.0
    >>> effective_rank(np.array([2.0, 0.0]))
    1.0
    """
    s = np.asarray(singular_values, dtype=np.float64)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(round(math.exp(-(p * np.log(p)).sum()), 12))


class ParameterStats(AnalyzerBase):
    """Norm, RMS, distance from the first checkpoint and spectrum of every parameter tensor.

    Parameters
    ----------
    top_k
        How many of the largest singular values of each 2-D weight to store.

    Examples
    --------
    >>> ParameterStats().fields["norm"].dims
    ('parameter',)
    """

    name = "parameter_stats"
    version = "1"

    def __init__(self, top_k: int = 16) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        # A dict, not a MappingProxyType: the analyzer is pickled to worker processes.
        self.fields: Mapping[str, FieldSpec] = {
            "norm": FieldSpec(("parameter",), "float64", "Frobenius norm of the tensor"),
            "rms": FieldSpec(("parameter",), "float64", "norm / sqrt(number of elements)"),
            "distance_from_first": FieldSpec(
                ("parameter",), "float64", "norm of the change since the first checkpoint"
            ),
            "effective_rank": FieldSpec(
                ("parameter",), "float64", "entropy effective rank of a 2-D weight (else NaN)"
            ),
            "singular_values": FieldSpec(
                ("matrix", "rank"), "float64", f"the {top_k} largest singular values"
            ),
        }

    def __repr__(self) -> str:
        return f"ParameterStats(top_k={self.top_k})"

    def prepare(self, run: RunContext) -> Mapping[str, JSONValue]:
        """Record the parameter and 2-D matrix names and the first checkpoint's epoch."""
        model = run.load_model(run.epochs[0])
        named = list(model.named_parameters())
        return {
            "parameters": [name for name, _ in named],
            "matrices": [name for name, tensor in named if tensor.ndim == 2],
            "reference_epoch": run.epochs[0],
            "top_k": self.top_k,
        }

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return the five fields for the model's current weights."""
        import torch

        tensors = dict(model.named_parameters())
        names = list(context.params.get("parameters", list(tensors)))
        matrices = list(context.params.get("matrices", []))
        top_k = int(context.params.get("top_k", self.top_k))
        missing = [name for name in names if name not in tensors]
        if missing:
            raise KeyError(
                f"the model has no parameters {missing}, which the run's first analysed "
                "checkpoint had; the model factory must build the same architecture each time"
            )
        reference = None
        if context.load_state_dict is not None and "reference_epoch" in context.params:
            reference = context.load_state_dict(int(context.params["reference_epoch"]))
        n = len(names)
        norm, rms, distance, eff_rank = (np.full(n, np.nan) for _ in range(4))
        spectra = np.full((len(matrices), top_k), np.nan)
        for i, name in enumerate(names):
            weight = tensors[name].detach().to("cpu", torch.float64)
            norm[i] = float(torch.linalg.vector_norm(weight))
            rms[i] = norm[i] / math.sqrt(max(weight.numel(), 1))
            if reference is not None and name in reference:
                first = reference[name].detach().to("cpu", torch.float64)
                distance[i] = float(torch.linalg.vector_norm(weight - first))
            if weight.ndim == 2:
                s = torch.linalg.svdvals(weight).numpy()
                eff_rank[i] = effective_rank(s)
                if name in matrices:
                    kept = s[:top_k]
                    spectra[matrices.index(name), : kept.size] = kept
        return {
            "norm": norm,
            "rms": rms,
            "distance_from_first": distance,
            "effective_rank": eff_rank,
            "singular_values": spectra,
        }
