"""Analyzers of the Modulo Addition family: what is stored for every checkpoint.

Each analyzer implements :class:`epochstore.interface.Analyzer`. They read the model's
weights and the activation cache of one forward pass over the full ``(a, b)`` grid (the probe,
:class:`~epochstore.families.modadd.data.ModAddData`, row ``a * p + b``). Field names of the
original npz-based tool are kept: ``dominant_frequencies/coefficients``,
``neuron_activations/activations`` and ``neuron_freq_norm/norm_matrix``.

Dimension names shared by the analyzers: ``fourier_component`` (the ``p`` rows of
:func:`~epochstore.analysis.fourier.fourier_basis`: const, sin 1, cos 1, ...),
``frequency`` (``p // 2`` entries, index ``i`` is frequency ``k = i + 1``), ``neuron``
(``d_mlp``), ``a`` and ``b`` (the two operands).

References
----------
N. Nanda, L. Chan, T. Lieberum, J. Smith, J. Steinhardt, "Progress measures for grokking via
mechanistic interpretability", ICLR 2023.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import torch

from epochstore.analysis.fourier import (
    FrequencyCoefficients,
    fourier_basis,
    frequency_coefficients,
    frequency_norms,
    gini,
    neuron_frequency_fractions,
)
from epochstore.errors import CheckpointNotFoundError
from epochstore.families.modadd.data import ModAddData
from epochstore.families.modadd.train import loss_fn
from epochstore.interface import AnalyzerBase, FieldSpec

if TYPE_CHECKING:
    from epochstore.interface import Analyzer, EpochContext, JSONValue, RunContext

__all__ = [
    "SPECIALISED_THRESHOLD",
    "DominantFrequencies",
    "NeuronActivations",
    "NeuronFreqNorm",
    "ProgressMeasures",
    "TrainingMetrics",
    "default_analyzers",
    "embedding_fourier_norms",
    "excluded_loss",
    "key_frequencies_from_embedding",
    "key_frequencies_from_neurons",
    "neuron_grid",
    "restricted_loss",
]

#: A neuron is *specialised* (clustered) when at least this fraction of its DC-removed
#: Fourier energy lies in one frequency.
SPECIALISED_THRESHOLD: Final = 0.85

Array = npt.NDArray[Any]


def _probe(probe: Any) -> ModAddData:
    if not isinstance(probe, ModAddData):
        raise TypeError(
            f"modadd analyzers need the family's probe (ModAddData), got {type(probe).__name__}"
        )
    return probe


def _cached(cache: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    try:
        return cache[key]
    except KeyError:
        raise KeyError(
            f"activation cache has no {key!r}; run the model with "
            "ModAddFamily.run_with_cache (or model(x, cache={})), and keep the key: "
            "ModAddFamily(cache_keys=None) keeps every activation"
        ) from None


def _param(model: torch.nn.Module, name: str) -> torch.Tensor:
    return model.get_parameter(name).detach().to("cpu", torch.float64)


def neuron_grid(cache: Mapping[str, torch.Tensor], p: int) -> torch.Tensor:
    """Return the MLP post-activations at ``=`` over the grid as ``(d_mlp, p, p)`` (neuron, a, b).

    The cache must come from a forward pass over the probe's rows in order ``a * p + b``.
    """
    post = _cached(cache, "mlp_post")[:, -1, :]
    if post.shape[0] != p * p:
        raise ValueError(f"expected the full grid of {p * p} rows, got {post.shape[0]}")
    return post.T.reshape(-1, p, p)


#: Work several analyzers of one epoch share, keyed by ``id`` of the cache's ``mlp_post``
#: tensor and dropped when that tensor is freed (so nothing outlives the epoch's cache).
_SHARED: dict[int, dict[str, Any]] = {}


def _shared(cache: Mapping[str, torch.Tensor], key: str, make: Any) -> Any:
    """Return ``make()``, computed once per cache (per epoch) and shared by the analyzers."""
    post = _cached(cache, "mlp_post")
    entry = _SHARED.get(id(post))
    if entry is None:
        entry = _SHARED[id(post)] = {}
        weakref.finalize(post, _SHARED.pop, id(post), None)
    if key not in entry:
        entry[key] = make()
    return entry[key]


def _coefficients(cache: Mapping[str, torch.Tensor], p: int) -> FrequencyCoefficients:
    """:func:`frequency_coefficients` of the epoch's grid, computed once per epoch.

    Read straight from the cache's rows ``a * p + b`` as ``(a, b, neuron)``: no copy.
    """

    def make() -> FrequencyCoefficients:
        rows = neuron_grid(cache, p).permute(1, 2, 0).detach().to("cpu").numpy()
        return frequency_coefficients(rows, neuron_axis=-1)

    result: FrequencyCoefficients = _shared(cache, f"coefficients/{p}", make)
    return result


def _fractions(cache: Mapping[str, torch.Tensor], p: int) -> Array:
    """:func:`neuron_frequency_fractions` of the epoch's grid, computed once per epoch."""

    def make() -> Array:
        fractions = neuron_frequency_fractions(_coefficients(cache, p))
        fractions.flags.writeable = False
        return fractions

    result: Array = _shared(cache, f"fractions/{p}", make)
    return result


def embedding_fourier_norms(model: torch.nn.Module, p: int) -> Array:
    """Norms of the number tokens' embedding along each Fourier basis row.

    ``coefficients[i] = || F[i] @ W_E[:p] ||_2`` where ``F`` is the ``(p, p)`` Fourier basis of
    Z_p and ``W_E[:p]`` the ``(p, d_model)`` embeddings of tokens ``0..p-1`` (``=`` excluded):
    how much the embedding varies like ``F[i]`` as a function of the token.

    Returns
    -------
    numpy.ndarray
        ``(p,)`` float64.
    """
    # In torch, as the other per-epoch work: numpy's BLAS threads, spinning after a product,
    # would compete with torch's for the cores (measured: 10-30x slower on a loaded machine).
    basis = torch.from_numpy(fourier_basis(p))
    result: Array = (basis @ _param(model, "W_E")[:p]).norm(dim=1).numpy()
    return result


def _neuron_logit_fourier_norms(model: torch.nn.Module, p: int) -> Array:
    # W_L = W_out @ W_U maps neurons to logits; its Fourier norms along the output class.
    w_l = _param(model, "W_out") @ _param(model, "W_U")
    result: Array = (w_l @ torch.from_numpy(fourier_basis(p)).T).norm(dim=0).numpy()
    return result


def key_frequencies_from_neurons(
    fractions: Array,
    threshold: float = SPECIALISED_THRESHOLD,
    min_share: float = 0.05,
    min_neurons: int = 2,
) -> list[int]:
    """Frequencies that clusters of specialised neurons are tuned to.

    A neuron is specialised if its largest frequency fraction (see
    :func:`~epochstore.analysis.fourier.neuron_frequency_fractions`) is
    ``>= threshold``; a frequency is *key* if at least ``max(min_neurons, min_share * S)`` of
    the ``S`` specialised neurons are tuned to it.

    Parameters
    ----------
    fractions
        ``(p // 2, d_mlp)`` frequency fractions; row ``k - 1`` is frequency ``k``.

    Returns
    -------
    list of int
        Sorted frequencies ``k`` (1-based); empty if no neuron is specialised.
    """
    best = fractions.max(axis=0)
    dominant = fractions.argmax(axis=0) + 1
    chosen = dominant[best >= threshold]
    if chosen.size == 0:
        return []
    freqs, counts = np.unique(chosen, return_counts=True)
    needed = max(min_neurons, min_share * chosen.size)
    return sorted(int(f) for f, c in zip(freqs, counts, strict=True) if c >= needed)


def key_frequencies_from_embedding(norms: Array, ratio: float = 0.5) -> list[int]:
    """Frequencies whose embedding norm is at least ``ratio`` times the largest one.

    Parameters
    ----------
    norms
        ``(p // 2,)`` per-frequency embedding norms; entry ``k - 1`` is frequency ``k``.
    """
    return sorted(int(i) + 1 for i in np.flatnonzero(norms >= ratio * norms.max()))


def _key_directions(p: int, key_frequencies: Sequence[int]) -> torch.Tensor:
    """The key directions by residue: ``(p, 2K)`` columns ``cos(w_k r)``, ``sin(w_k r)``.

    The grid's orthonormal directions ``cos(w_k (a + b))``, ``sin(w_k (a + b))`` depend on
    ``a + b`` only through ``r = (a + b) mod p``, each residue occurring ``p`` times: row ``r``
    here, scaled so that the ``(p^2, 2K)`` matrix ``D = table[(a + b) mod p]`` has unit columns.
    """
    residues = torch.arange(p, dtype=torch.float64)[:, None]
    freqs = torch.tensor(list(key_frequencies), dtype=torch.float64)
    angle = (2 * math.pi / p) * residues * freqs
    waves = torch.stack([torch.cos(angle), torch.sin(angle)], dim=2).reshape(p, -1)
    scale: torch.Tensor = waves.norm(dim=0, keepdim=True) * math.sqrt(p)
    return waves / scale


def _check_frequencies(p: int, key_frequencies: Sequence[int]) -> list[int]:
    freqs = [int(k) for k in key_frequencies]
    bad = [k for k in freqs if not 1 <= k <= p // 2]
    if bad or len(set(freqs)) != len(freqs):
        raise ValueError(
            f"key frequencies must be distinct integers in 1..{p // 2}, got {list(key_frequencies)}"
        )
    return freqs


def _key_table(
    model: torch.nn.Module,
    cache: Mapping[str, torch.Tensor],
    probe: ModAddData,
    key_frequencies: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 logits and the key part of the logits by residue ``(a + b) mod p``.

    The key part ``(sum_k (u_k u_k^T + v_k v_k^T) N) W_out W_U`` of row ``(a, b)`` is
    ``D ((D^T N) W_L)`` with ``D`` the ``(p^2, 2K)`` key directions, which depend on the row
    only through ``r = (a + b) mod p`` (:func:`_key_directions`): returned as the ``(p, p)``
    table ``residue x logit``, never gathered over the grid. ``D^T N`` is read off the
    neurons' 2-D Fourier coefficients (:func:`_key_projections`, shared with the frequency
    analyses): no product with the ``(p^2, d_mlp)`` activations at all.
    """
    p = probe.p
    freqs = _check_frequencies(p, key_frequencies)
    logits = _cached(cache, "logits")[:, -1, :].to("cpu", torch.float64)
    if not freqs:
        return logits, torch.zeros(p, logits.shape[1], dtype=torch.float64)
    w_l = _param(model, "W_out") @ _param(model, "W_U")
    projections = _key_projections(_coefficients(cache, p), freqs)
    return logits, _key_directions(p, freqs) @ (projections @ w_l)


def _residues(probe: ModAddData) -> torch.Tensor:
    """``(a + b) mod p`` of every probe row."""
    inputs = probe.inputs.cpu()
    return (inputs[:, 0] + inputs[:, 1]).remainder(probe.p)


def _key_projections(coef: FrequencyCoefficients, freqs: Sequence[int]) -> torch.Tensor:
    """``D^T N``: ``(2K, d_mlp)`` dot products of each neuron's grid with the key directions.

    ``cos(w (a + b)) = cos(wa) cos(wb) - sin(wa) sin(wb)`` and the unit direction is
    ``cos(w (a + b)) * sqrt(2) / p``, so its dot product with a grid is
    ``(G[cos, cos] - G[sin, sin]) / sqrt(2)`` in the 2-D Fourier coefficients ``G``; likewise
    ``(G[sin, cos] + G[cos, sin]) / sqrt(2)`` for ``sin(w (a + b))``. Centring changes only
    ``G[const, const]``, which neither uses.
    """
    blocks = coef.blocks[:, [k - 1 for k in freqs]]  # (n, K, r, s), 0 sin, 1 cos
    cos = (blocks[:, :, 1, 1] - blocks[:, :, 0, 0]) / math.sqrt(2)
    sin = (blocks[:, :, 0, 1] + blocks[:, :, 1, 0]) / math.sqrt(2)
    # Columns of D alternate cos k, sin k.
    return torch.from_numpy(np.stack([cos, sin], axis=2).reshape(cos.shape[0], -1).T.copy())


def _restricted(logits: torch.Tensor, key_table: torch.Tensor, probe: ModAddData) -> float:
    # (mean_rows(N) + key part) W_L, re-centred on mean_rows(L): the constant mean_rows(N) W_L
    # cancels, leaving the key part's logits centred plus the mean logits. The key part depends
    # on the row only through its residue, and each residue is p rows of the grid, so the
    # restricted logits are a (p, p) table by residue and its mean over the grid is the mean
    # over residues.
    restricted = key_table - key_table.mean(dim=0, keepdim=True)
    restricted = restricted + logits.mean(dim=0, keepdim=True)
    log_probs = torch.log_softmax(restricted, dim=-1)
    test = probe.test_indices.cpu()
    return float(-log_probs[_residues(probe)[test], probe.labels.cpu()[test]].mean())


def _excluded(logits: torch.Tensor, key_table: torch.Tensor, probe: ModAddData) -> float:
    train = probe.train_indices.cpu()
    excluded = logits[train] - key_table[_residues(probe)[train]]
    return float(loss_fn(excluded, probe.labels.cpu()[train]))


def restricted_loss(
    model: torch.nn.Module,
    cache: Mapping[str, torch.Tensor],
    probe: ModAddData,
    key_frequencies: Sequence[int],
) -> float:
    """Test loss of the model restricted to the key frequencies (Nanda et al. 2023).

    With ``N`` the ``(p^2, d_mlp)`` neuron activations at ``=`` over the grid and ``u_k``,
    ``v_k`` the unit vectors ``cos(w_k (a + b))``, ``sin(w_k (a + b))`` over the grid
    (``w_k = 2 pi k / p``), keep the mean activation plus the projections on the key
    directions::

        N_R = mean_rows(N) + sum_k (u_k u_k^T + v_k v_k^T) N
        L_R = N_R W_out W_U + (mean_rows(L) - mean_rows(N_R W_out W_U))

    where ``L`` are the model's logits: everything not going through the key-frequency parts
    of the neurons is replaced by its average. Returns the float64 cross-entropy of ``L_R`` on
    the test set. It falls well before the test loss does: the generalising circuit forms
    before the memorising one is cleaned up.
    """
    logits, key_table = _key_table(model, cache, probe, key_frequencies)
    return _restricted(logits, key_table, probe)


def excluded_loss(
    model: torch.nn.Module,
    cache: Mapping[str, torch.Tensor],
    probe: ModAddData,
    key_frequencies: Sequence[int],
) -> float:
    """Train loss of the model with the key frequencies' neuron components removed.

    With the notation of :func:`restricted_loss`, subtract from the logits what the
    key-frequency parts of the neuron activations contribute::

        L_E = L - (sum_k (u_k u_k^T + v_k v_k^T) N) W_out W_U

    and return the float64 cross-entropy of ``L_E`` on the training set. It rises while the
    model comes to rely on the Fourier circuit instead of memorisation.
    """
    logits, key_table = _key_table(model, cache, probe, key_frequencies)
    return _excluded(logits, key_table, probe)


class DominantFrequencies(AnalyzerBase):
    """Token embedding in the Fourier basis of Z_p.

    ``coefficients[i] = || F[i] @ W_E[:p] ||_2`` for the ``p`` basis rows ``F[i]`` (const,
    sin 1, cos 1, ..., see :func:`~epochstore.analysis.fourier.fourier_basis`), and
    ``frequency_norms[k - 1] = sqrt(coefficients[2k-1]^2 + coefficients[2k]^2)`` for
    ``k = 1..p//2``. After grokking a handful of frequencies carry most of the norm.
    """

    name = "dominant_frequencies"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "coefficients": FieldSpec(
                ("fourier_component",),
                "float32",
                "norm of W_E[:p] along each Fourier basis row (const, sin 1, cos 1, ...)",
            ),
            "frequency_norms": FieldSpec(
                ("frequency",),
                "float32",
                "sqrt(sin_k^2 + cos_k^2) of the coefficients; index i is frequency i + 1",
            ),
        }
    )

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return ``coefficients`` ``(p,)`` and ``frequency_norms`` ``(p // 2,)``."""
        p = _probe(probe).p
        coefficients = embedding_fourier_norms(model, p)
        return {
            "coefficients": coefficients.astype(np.float32),
            "frequency_norms": frequency_norms(coefficients).astype(np.float32),
        }


class NeuronActivations(AnalyzerBase):
    """MLP post-activations (after ReLU) at the ``=`` position over the full grid.

    ``activations[n, a, b]`` is neuron ``n``'s activation on input ``a b =``.
    """

    name = "neuron_activations"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "activations": FieldSpec(
                ("neuron", "a", "b"), "float32", "MLP post-activation at '=' for input 'a b ='"
            ),
        }
    )

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return ``activations`` ``(d_mlp, p, p)`` float32."""
        # One C-ordered float32 copy (the cache may be freed once the epoch is done).
        grid = neuron_grid(cache, _probe(probe).p).detach().to("cpu").numpy()
        return {"activations": np.array(grid, dtype=np.float32, order="C")}


class NeuronFreqNorm(AnalyzerBase):
    """How much of each neuron's variation over the grid lies in each frequency.

    For neuron ``n`` with activations ``A_n[a, b]``: centre it (``C_n = A_n - mean A_n``), take
    its 2-D Fourier coefficients ``G_n = F C_n F^T``, and for frequency ``k`` sum ``G_n[x, y]^2``
    over ``x, y`` in ``{const, sin k, cos k}`` (``(x, y) = (const, const)`` is zero after
    centring), divided by ``sum G_n^2 = ||C_n||^2``. So
    ``norm_matrix[k - 1, n]`` is the fraction of the neuron's DC-removed energy explained by
    frequency ``k`` alone (terms in ``a``, in ``b``, and their products at frequency ``k``).
    ``dominant_frequency[n]`` is the ``k`` with the largest fraction (0 for a neuron with no
    variation, e.g. dead) and ``dominant_fraction[n]`` that fraction; a neuron is specialised
    when it is ``>= 0.85``.
    """

    name = "neuron_freq_norm"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "norm_matrix": FieldSpec(
                ("frequency", "neuron"),
                "float32",
                "fraction of the neuron's DC-removed Fourier energy in frequency i + 1",
            ),
            "dominant_frequency": FieldSpec(
                ("neuron",), "int32", "frequency k with the largest fraction (0: no variation)"
            ),
            "dominant_fraction": FieldSpec(
                ("neuron",), "float32", "the largest fraction (>= 0.85: specialised neuron)"
            ),
        }
    )

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return ``norm_matrix`` ``(p // 2, d_mlp)``, ``dominant_frequency``/``_fraction``."""
        fractions = _fractions(cache, _probe(probe).p)
        best = fractions.max(axis=0)
        dominant = np.where(best > 0, fractions.argmax(axis=0) + 1, 0)
        return {
            "norm_matrix": fractions.astype(np.float32),
            "dominant_frequency": dominant.astype(np.int32),
            "dominant_fraction": best.astype(np.float32),
        }


class TrainingMetrics(AnalyzerBase):
    """Train and test loss and accuracy of the checkpoint, recomputed on the probe.

    The probe covers the whole grid, so one forward pass gives both sets. Losses are the
    float64 mean cross-entropy at ``=`` (as in training); accuracies the fraction of argmax
    predictions equal to ``(a + b) mod p``.
    """

    name = "training_metrics"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "train_loss": FieldSpec((), "float64", "cross-entropy on the training set"),
            "test_loss": FieldSpec((), "float64", "cross-entropy on the test set"),
            "train_accuracy": FieldSpec((), "float64", "accuracy on the training set"),
            "test_accuracy": FieldSpec((), "float64", "accuracy on the test set"),
        }
    )

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return the four metrics as 0-d float64 arrays."""
        data = _probe(probe)
        logits = _cached(cache, "logits")[:, -1, :].to("cpu", torch.float64)
        labels = data.labels.cpu()
        # Per row once (the cross-entropy of loss_fn, row by row), then averaged per split.
        nll = -torch.log_softmax(logits, dim=-1).gather(-1, labels[:, None])[:, 0]
        correct = (logits.argmax(dim=-1) == labels).to(torch.float64)
        out: dict[str, Array] = {}
        for split, idx in (("train", data.train_indices), ("test", data.test_indices)):
            rows = idx.cpu()
            out[f"{split}_loss"] = np.asarray(float(nll[rows].mean()))
            out[f"{split}_accuracy"] = np.asarray(float(correct[rows].mean()))
        return out


class ProgressMeasures(AnalyzerBase):
    """The progress measures of Nanda et al. (2023), with key frequencies from the final epoch.

    ``prepare`` loads the run's final checkpoint and picks its *key frequencies*: those that
    clusters of specialised neurons (``>= 0.85`` of their energy on one frequency, see
    :class:`NeuronFreqNorm`) are tuned to (:func:`key_frequencies_from_neurons`), or, when no
    neuron is specialised, the frequencies with the largest embedding norms
    (:func:`key_frequencies_from_embedding`). They are stored as the analyzer's parameters and
    reused for every epoch. Per epoch:

    ``restricted_loss``
        :func:`restricted_loss`: test loss using only the key-frequency parts of the neurons.
    ``excluded_loss``
        :func:`excluded_loss`: train loss with those parts removed.
    ``gini_embedding``
        Gini coefficient (:func:`~epochstore.analysis.fourier.gini`) of the
        per-frequency norms of ``W_E[:p]`` in the Fourier basis (``k = 1..p//2``): near 0 when
        the embedding spreads over all frequencies, large when a few dominate.
    ``gini_neuron_logit``
        The same for the neuron-to-logit map ``W_L = W_out W_U``, along the output class.
    ``specialised_neurons``
        How many neurons have ``>= 0.85`` of their energy on one frequency.
    ``sum_squared_weights``
        Sum of squares of all parameters (what weight decay shrinks).

    Parameters
    ----------
    key_frequencies
        Use these instead of choosing them from the final checkpoint.
    threshold
        The specialisation threshold.
    """

    name = "progress_measures"
    version = "1"
    fields: Mapping[str, FieldSpec] = MappingProxyType(
        {
            "restricted_loss": FieldSpec(
                (), "float64", "test loss using only the key-frequency neuron components"
            ),
            "excluded_loss": FieldSpec(
                (), "float64", "train loss with the key-frequency neuron components removed"
            ),
            "gini_embedding": FieldSpec(
                (), "float64", "Gini coefficient of W_E's per-frequency Fourier norms"
            ),
            "gini_neuron_logit": FieldSpec(
                (), "float64", "Gini coefficient of W_out W_U's per-frequency Fourier norms"
            ),
            "specialised_neurons": FieldSpec(
                (), "int64", "neurons with >= 0.85 of their energy on one frequency"
            ),
            "sum_squared_weights": FieldSpec((), "float64", "sum of squares of all parameters"),
        }
    )

    def __init__(
        self,
        key_frequencies: Sequence[int] | None = None,
        threshold: float = SPECIALISED_THRESHOLD,
    ) -> None:
        self.key_frequencies = None if key_frequencies is None else list(key_frequencies)
        self.threshold = threshold

    def __repr__(self) -> str:
        return (
            f"ProgressMeasures(key_frequencies={self.key_frequencies!r}, "
            f"threshold={self.threshold!r})"
        )

    def prepare(self, run: RunContext) -> Mapping[str, JSONValue]:
        """Choose the key frequencies from the run's final checkpoint.

        Returns
        -------
        dict
            ``{"key_frequencies": [...], "method": "neurons" | "embedding" | "given",
            "source_epoch": final epoch or None, "threshold": threshold}``.

        Raises
        ------
        CheckpointNotFoundError
            If key frequencies were not given and the run has no checkpoints.
        """
        if self.key_frequencies is not None:
            return {
                "key_frequencies": sorted(self.key_frequencies),
                "method": "given",
                "source_epoch": None,
                "threshold": self.threshold,
            }
        if not run.epochs:
            raise CheckpointNotFoundError(
                f"run {run.location!r} has no checkpoints to choose key frequencies from; "
                "train it first or pass ProgressMeasures(key_frequencies=[...])"
            )
        final = run.epochs[-1]
        model = run.load_model(final)
        probe = _probe(run.family.make_probe(run.config, run.device))
        cache = run.family.run_with_cache(model, probe)
        freqs, method = self.choose_key_frequencies(model, cache, probe)
        return {
            "key_frequencies": freqs,
            "method": method,
            "source_epoch": final,
            "threshold": self.threshold,
        }

    def choose_key_frequencies(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: ModAddData,
    ) -> tuple[list[int], str]:
        """Return the key frequencies of a (trained) model and the method that found them."""
        freqs = key_frequencies_from_neurons(_fractions(cache, probe.p), self.threshold)
        if freqs:
            return freqs, "neurons"
        norms = frequency_norms(embedding_fourier_norms(model, probe.p))
        return key_frequencies_from_embedding(norms), "embedding"

    def compute(
        self,
        model: torch.nn.Module,
        cache: Mapping[str, torch.Tensor],
        probe: Any,
        context: EpochContext,
    ) -> dict[str, Array]:
        """Return the six progress measures of this epoch as 0-d arrays.

        Raises
        ------
        ValueError
            If ``context.params`` has no ``key_frequencies`` (``prepare`` was not run) and
            none were given to the constructor.
        """
        data = _probe(probe)
        keys = context.params.get("key_frequencies", self.key_frequencies)
        if keys is None:
            raise ValueError(
                "progress_measures needs key frequencies: run prepare(run) first (the "
                "pipeline does) or pass ProgressMeasures(key_frequencies=[...])"
            )
        p = data.p
        fractions = _fractions(cache, p)
        logits, key_table = _key_table(model, cache, data, keys)
        embed = frequency_norms(embedding_fourier_norms(model, p))
        logit = frequency_norms(_neuron_logit_fourier_norms(model, p))
        with torch.no_grad():
            weights = sum(float((w.detach().double() ** 2).sum()) for w in model.parameters())
        return {
            "restricted_loss": np.asarray(_restricted(logits, key_table, data)),
            "excluded_loss": np.asarray(_excluded(logits, key_table, data)),
            "gini_embedding": np.asarray(gini(embed)),
            "gini_neuron_logit": np.asarray(gini(logit)),
            "specialised_neurons": np.asarray(
                int((fractions.max(axis=0) >= self.threshold).sum()), dtype=np.int64
            ),
            "sum_squared_weights": np.asarray(weights, dtype=np.float64),
        }


def default_analyzers() -> list[Analyzer]:
    """Return one instance of each analyzer of the family, in a stable order."""
    return [
        DominantFrequencies(),
        NeuronActivations(),
        NeuronFreqNorm(),
        TrainingMetrics(),
        ProgressMeasures(),
    ]
