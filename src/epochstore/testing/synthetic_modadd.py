"""Synthetic Modulo Addition artifacts: a run's store without training, for tests and benchmarks.

:func:`write_synthetic_run` writes a run directory (``variant.json`` and ``artifacts/``) whose
analyzers, fields, dims and dtypes are those of :mod:`epochstore.families.modadd`, with values
shaped like a grokking run: neurons drift from noise to a cosine of ``a + b`` at one of a few
key frequencies, the test loss falls late. Nothing here is a model: it is data for renderers,
the dashboard and read-count tests, at any size (``p = 113, d_mlp = 512`` in seconds per epoch).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from epochstore.analysis.fourier import frequency_norms
from epochstore.families.modadd.analyzers import (
    DominantFrequencies,
    NeuronActivations,
    NeuronFreqNorm,
    ProgressMeasures,
    TrainingMetrics,
)
from epochstore.interface import FieldSpec
from epochstore.run import Variant, write_variant
from epochstore.store import ArtifactStore

__all__ = ["ANALYZERS", "SyntheticModAdd", "write_synthetic_run"]

#: The modadd analyzers this module writes, by name.
ANALYZERS: dict[str, Any] = {
    a.name: a
    for a in (DominantFrequencies, NeuronActivations, NeuronFreqNorm, TrainingMetrics,
              ProgressMeasures)
}

Array = npt.NDArray[Any]


class SyntheticModAdd:
    """Deterministic synthetic values of every modadd analyzer, epoch by epoch.

    Parameters
    ----------
    p
        The modulus (odd).
    d_mlp
        Number of neurons.
    key_frequencies
        The frequencies the "trained" neurons end up tuned to (``1..p // 2``).
    grok_epoch, width
        Progress is ``sigmoid((epoch - grok_epoch) / width)``: 0 memorising, 1 generalised.
    seed
        Seed of the fixed per-neuron noise and phases.
    """

    def __init__(
        self,
        p: int = 23,
        d_mlp: int = 32,
        key_frequencies: Sequence[int] = (3, 7),
        *,
        grok_epoch: float = 500.0,
        width: float = 80.0,
        seed: int = 0,
    ) -> None:
        if p % 2 == 0 or p < 3:
            raise ValueError(f"p must be odd and >= 3, got {p}")
        if not key_frequencies or any(not 1 <= k <= p // 2 for k in key_frequencies):
            raise ValueError(f"key frequencies must lie in 1..{p // 2}, got {key_frequencies}")
        self.p, self.d_mlp = p, d_mlp
        self.key_frequencies = [int(k) for k in key_frequencies]
        self.grok_epoch, self.width = grok_epoch, width
        rng = np.random.default_rng(seed)
        self._assigned = np.asarray(
            [self.key_frequencies[n % len(self.key_frequencies)] for n in range(d_mlp)]
        )
        self._phase = rng.uniform(0, 2 * np.pi, d_mlp).astype(np.float32)
        self._noise = rng.standard_normal((d_mlp, p, p), dtype=np.float32)
        self._embed_noise = rng.uniform(0.2, 0.6, p)
        self._jitter = rng.uniform(0.0, 0.1, (p // 2, d_mlp))

    def progress(self, epoch: int) -> float:
        """Return the grokking progress in [0, 1] at ``epoch``."""
        return 1.0 / (1.0 + math.exp(-(epoch - self.grok_epoch) / self.width))

    def neuron_activations(self, epoch: int) -> dict[str, Array]:
        """``activations`` ``(d_mlp, p, p)`` float32: ReLU of a noise-to-cosine blend."""
        s = np.float32(self.progress(epoch))
        total = np.add.outer(np.arange(self.p), np.arange(self.p)).astype(np.float32)
        omega = (2 * np.pi / self.p) * self._assigned.astype(np.float32)
        wave = np.cos(omega[:, None, None] * total[None] + self._phase[:, None, None])
        acts = s * 1.5 * wave + (1 - s) * self._noise + 0.2
        return {"activations": np.maximum(acts, 0, dtype=np.float32)}

    def neuron_freq_norm(self, epoch: int) -> dict[str, Array]:
        """``norm_matrix`` ``(p // 2, d_mlp)`` and the dominant frequency and fraction."""
        s = self.progress(epoch)
        matrix = (1 - s) * (0.04 + self._jitter)
        matrix[self._assigned - 1, np.arange(self.d_mlp)] += 0.95 * s
        matrix = np.clip(matrix, 0, 1)
        best = matrix.max(axis=0)
        return {
            "norm_matrix": matrix.astype(np.float32),
            "dominant_frequency": (matrix.argmax(axis=0) + 1).astype(np.int32),
            "dominant_fraction": best.astype(np.float32),
        }

    def dominant_frequencies(self, epoch: int) -> dict[str, Array]:
        """``coefficients`` ``(p,)`` and ``frequency_norms`` ``(p // 2,)``."""
        s = self.progress(epoch)
        coefficients = self._embed_noise * (1.2 - s)
        for k in self.key_frequencies:
            coefficients[2 * k - 1] += 2.5 * s
            coefficients[2 * k] += 2.0 * s
        return {
            "coefficients": coefficients.astype(np.float32),
            "frequency_norms": frequency_norms(coefficients).astype(np.float32),
        }

    def training_metrics(self, epoch: int) -> dict[str, Array]:
        """The four scalar metrics."""
        s = self.progress(epoch)
        memorised = 1 - math.exp(-epoch / 40)
        return {
            "train_loss": np.asarray(4.7 * (1 - memorised) + 1e-6 + 1e-3 * (1 - s)),
            "test_loss": np.asarray(4.7 + 8 * memorised * (1 - s) - 4.69 * s),
            "train_accuracy": np.asarray(0.01 + 0.99 * memorised),
            "test_accuracy": np.asarray(0.01 + 0.99 * s),
        }

    def progress_measures(self, epoch: int) -> dict[str, Array]:
        """The six progress measures."""
        s = self.progress(epoch)
        early = 1 / (1 + math.exp(-(epoch - 0.7 * self.grok_epoch) / self.width))
        return {
            "restricted_loss": np.asarray(4.7 * (1 - early) + 1e-3),
            "excluded_loss": np.asarray(1e-3 + 6 * early),
            "gini_embedding": np.asarray(0.2 + 0.7 * s),
            "gini_neuron_logit": np.asarray(0.15 + 0.75 * early),
            "specialised_neurons": np.asarray(round(self.d_mlp * s), dtype=np.int64),
            "sum_squared_weights": np.asarray(2000 * (1 - 0.6 * s)),
        }

    def outputs(self, analyzer: str, epoch: int) -> dict[str, Array]:
        """The fields of ``analyzer`` at ``epoch``."""
        method = getattr(self, analyzer, None)
        if analyzer not in ANALYZERS or method is None:
            raise KeyError(f"no synthetic analyzer {analyzer!r}; known: {sorted(ANALYZERS)}")
        result: dict[str, Array] = method(epoch)
        return result


def _dims(analyzer: str) -> dict[str, tuple[str, ...]]:
    fields: dict[str, FieldSpec] = dict(ANALYZERS[analyzer].fields)
    return {name: tuple(spec.dims) for name, spec in fields.items()}


def write_synthetic_run(
    run: str | os.PathLike[str],
    epochs: Iterable[int],
    *,
    p: int = 23,
    d_mlp: int = 32,
    key_frequencies: Sequence[int] = (3, 7),
    analyzers: Iterable[str] | None = None,
    grok_epoch: float | None = None,
    chunks: dict[str, dict[str, Sequence[int]]] | None = None,
    seed: int = 0,
) -> Path:
    """Write a synthetic modadd run: ``variant.json`` and the artifacts of ``epochs``.

    Parameters
    ----------
    run
        The run directory (created if needed; existing epochs are kept, new ones added).
    epochs
        The epochs to write.
    p, d_mlp, key_frequencies, seed
        As :class:`SyntheticModAdd`.
    analyzers
        The analyzers to write (default all five).
    grok_epoch
        Midpoint of the synthetic grokking; default the middle of ``epochs``.
    chunks
        Per analyzer, per field chunk shapes for the analyzer's first epoch.

    Returns
    -------
    pathlib.Path
        The run directory.
    """
    run = Path(run)
    epochs = sorted({int(e) for e in epochs})
    names = list(ANALYZERS) if analyzers is None else list(analyzers)
    middle = (epochs[0] + epochs[-1]) / 2 if epochs else 0.0
    grok = float(middle if grok_epoch is None else grok_epoch)
    synth = SyntheticModAdd(p, d_mlp, key_frequencies, grok_epoch=grok,
                            width=max(1.0, grok / 6), seed=seed)
    # Only real ModAddConfig keys, so every modadd tool accepts the variant.
    write_variant(run, Variant(family="modadd", params={"p": p, "d_mlp": d_mlp}))
    store = ArtifactStore(run)
    for name in names:
        params: dict[str, Any] = {}
        if name == ProgressMeasures.name:
            params = {"key_frequencies": sorted(synth.key_frequencies), "method": "given",
                      "source_epoch": None, "threshold": 0.85}
        store.create_analyzer(name, version=ANALYZERS[name].version, params=params)
    for epoch in epochs:
        for name in names:
            if store.has_epoch(name, epoch):
                continue
            store.write_epoch(name, epoch, synth.outputs(name, epoch), dims=_dims(name),
                              chunks=(chunks or {}).get(name))
    return run
