"""The Fourier basis and every modadd analyzer, against slow, obviously-correct references.

References use explicit loops and direct sums of ``math.sin``/``math.cos`` (no FFT, no
vectorised shortcuts), on a small random model so the loops stay fast.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from epochstore.analysis.fourier import fourier_basis, fourier_labels, gini
from epochstore.families.modadd.analyzers import (
    DominantFrequencies,
    NeuronActivations,
    NeuronFreqNorm,
    ProgressMeasures,
    TrainingMetrics,
    default_analyzers,
    excluded_loss,
    key_frequencies_from_embedding,
    key_frequencies_from_neurons,
    restricted_loss,
)
from epochstore.families.modadd.config import ModAddConfig
from epochstore.families.modadd.data import ModAddData, make_data
from epochstore.families.modadd.family import ModAddFamily
from epochstore.families.modadd.model import ModAddTransformer, build_model
from epochstore.interface import Analyzer, EpochContext, check_analyzer

P = 11
CONFIG = ModAddConfig(p=P, d_model=16, n_heads=2, d_head=8, d_mlp=12, frac_train=0.5)


@pytest.fixture(scope="module")
def setup() -> tuple[ModAddTransformer, dict[str, torch.Tensor], ModAddData]:
    family = ModAddFamily()
    model = build_model(CONFIG)
    with torch.no_grad():  # non-zero biases so centring and bias handling are exercised
        model.b_in.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
        model.b_out.normal_(0, 0.3, generator=torch.Generator().manual_seed(2))
    probe = family.make_probe(CONFIG.to_dict())
    return model, family.run_with_cache(model, probe), probe


def ctx(**params: Any) -> EpochContext:
    return EpochContext(epoch=0, config=CONFIG.to_dict(), params=params)


# --- slow references ------------------------------------------------------------------------------


def ref_basis_row(p: int, i: int) -> list[float]:
    if i == 0:
        return [1 / math.sqrt(p)] * p
    k = (i + 1) // 2
    wave = math.sin if i % 2 == 1 else math.cos
    return [wave(2 * math.pi * k * x / p) * math.sqrt(2 / p) for x in range(p)]


def ref_neuron_acts(model: ModAddTransformer, p: int) -> np.ndarray:
    out = np.zeros((model.d_mlp, p, p))
    for a in range(p):
        for b in range(p):
            cache: dict[str, torch.Tensor] = {}
            with torch.no_grad():
                model(torch.tensor([[a, b, p]]), cache=cache)
            for n in range(model.d_mlp):
                out[n, a, b] = float(cache["mlp_post"][0, -1, n])
    return out


def ref_cross_entropy(logits: np.ndarray, labels: list[int]) -> float:
    total = 0.0
    for row, label in zip(logits, labels, strict=True):
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        total += log_z - row[label]
    return total / len(labels)


# --- Fourier basis --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [3, 5, 11, 23, 113])
def test_fourier_basis_is_orthonormal_with_labelled_rows(p: int) -> None:
    basis = fourier_basis(p)
    np.testing.assert_allclose(basis @ basis.T, np.eye(p), atol=1e-12)
    labels = fourier_labels(p)
    assert len(labels) == p
    assert labels[0] == "const"
    for k in range(1, p // 2 + 1):
        assert labels[2 * k - 1] == f"sin {k}"
        assert labels[2 * k] == f"cos {k}"
    for i in range(p):
        np.testing.assert_allclose(basis[i], ref_basis_row(p, i), atol=1e-12)


@pytest.mark.parametrize("p", [4, 1, 0])
def test_fourier_basis_refuses_even_or_tiny_p(p: int) -> None:
    with pytest.raises(ValueError, match="odd p"):
        fourier_basis(p)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=30))
def test_gini_equals_the_mean_absolute_difference_formula(values: list[float]) -> None:
    n, total = len(values), sum(values)
    expected = (
        0.0 if total == 0 else sum(abs(x - y) for x in values for y in values) / (2 * n * total)
    )
    assert gini(np.array(values)) == pytest.approx(expected, abs=1e-9)


# --- analyzers ------------------------------------------------------------------------------------


def test_every_analyzer_satisfies_the_protocol_and_returns_its_fields(setup: Any) -> None:
    model, cache, probe = setup
    context = ctx(key_frequencies=[1, 3])
    names = []
    for analyzer in default_analyzers():
        assert isinstance(analyzer, Analyzer)
        check_analyzer(analyzer)
        names.append(analyzer.name)
        result = analyzer.compute(model, cache, probe, context)
        assert set(result) == set(analyzer.fields)
        for field, spec in analyzer.fields.items():
            assert result[field].ndim == len(spec.dims), field
            assert result[field].dtype == np.dtype(spec.dtype), field
    assert names == [
        "dominant_frequencies",
        "neuron_activations",
        "neuron_freq_norm",
        "training_metrics",
        "progress_measures",
    ]


def test_dominant_frequencies_matches_direct_sums(setup: Any) -> None:
    model, cache, probe = setup
    out = DominantFrequencies().compute(model, cache, probe, ctx())
    w_e = model.W_E.detach().double().numpy()
    expected = []
    for i in range(P):
        row = ref_basis_row(P, i)
        comps = [sum(row[x] * w_e[x, d] for x in range(P)) for d in range(w_e.shape[1])]
        expected.append(math.sqrt(sum(c * c for c in comps)))
    assert out["coefficients"].shape == (P,)
    np.testing.assert_allclose(out["coefficients"], expected, rtol=1e-5)
    per_freq = [math.hypot(expected[2 * k - 1], expected[2 * k]) for k in range(1, P // 2 + 1)]
    np.testing.assert_allclose(out["frequency_norms"], per_freq, rtol=1e-5)


def test_neuron_activations_match_one_input_at_a_time(setup: Any) -> None:
    model, cache, probe = setup
    out = NeuronActivations().compute(model, cache, probe, ctx())
    assert out["activations"].shape == (12, P, P)
    assert out["activations"].dtype == np.float32
    assert out["activations"].flags.c_contiguous
    assert not np.shares_memory(out["activations"], cache["mlp_post"].numpy())
    np.testing.assert_allclose(out["activations"], ref_neuron_acts(model, P), atol=1e-5)


def test_neuron_freq_norm_matches_direct_two_dimensional_sums(setup: Any) -> None:
    model, cache, probe = setup
    out = NeuronFreqNorm().compute(model, cache, probe, ctx())
    acts = ref_neuron_acts(model, P)
    rows = [ref_basis_row(P, i) for i in range(P)]
    expected = np.zeros((P // 2, model.d_mlp))
    for n in range(model.d_mlp):
        mean = sum(acts[n, a, b] for a in range(P) for b in range(P)) / P**2
        centred = [[acts[n, a, b] - mean for b in range(P)] for a in range(P)]
        total = sum(v * v for line in centred for v in line)
        for k in range(1, P // 2 + 1):
            energy = 0.0
            for x in (0, 2 * k - 1, 2 * k):
                for y in (0, 2 * k - 1, 2 * k):
                    coef = sum(
                        rows[x][a] * centred[a][b] * rows[y][b] for a in range(P) for b in range(P)
                    )
                    energy += coef * coef
            expected[k - 1, n] = energy / total if total > 0 else 0.0
    assert out["norm_matrix"].shape == (P // 2, model.d_mlp)
    np.testing.assert_allclose(out["norm_matrix"], expected, atol=1e-5)
    live = expected.max(axis=0) > 0
    np.testing.assert_array_equal(
        out["dominant_frequency"][live], expected.argmax(axis=0)[live] + 1
    )
    np.testing.assert_allclose(out["dominant_fraction"], expected.max(axis=0), atol=1e-5)
    assert np.all(expected.sum(axis=0) <= 1 + 1e-9)


def test_neuron_freq_norm_of_a_pure_wave_neuron() -> None:
    from epochstore.analysis.fourier import neuron_frequency_fractions

    a = np.arange(P)[:, None]
    b = np.arange(P)[None, :]
    pure = np.cos(2 * np.pi * 3 * (a + b) / P) + 5.0
    dead = np.zeros((P, P))
    fractions = neuron_frequency_fractions(np.stack([pure, dead]))
    assert fractions[2, 0] == pytest.approx(1.0)
    assert fractions[:, 1].sum() == 0
    out = NeuronFreqNorm().compute(
        None,  # type: ignore[arg-type]
        {
            "mlp_post": torch.from_numpy(
                np.stack([pure, dead]).reshape(2, -1).T[:, None, :].repeat(3, axis=1)
            )
        },
        make_data(CONFIG),
        ctx(),
    )
    assert out["dominant_frequency"].tolist() == [3, 0]


def test_training_metrics_match_an_explicit_cross_entropy(setup: Any) -> None:
    model, cache, probe = setup
    out = TrainingMetrics().compute(model, cache, probe, ctx())
    logits = cache["logits"][:, -1].double().numpy()
    labels = probe.labels.tolist()
    for split, idx in (("train", probe.train_indices), ("test", probe.test_indices)):
        rows = idx.tolist()
        expected_loss = ref_cross_entropy(logits[rows], [labels[r] for r in rows])
        correct = sum(int(np.argmax(logits[r]) == labels[r]) for r in rows)
        assert float(out[f"{split}_loss"]) == pytest.approx(expected_loss, rel=1e-9)
        assert float(out[f"{split}_accuracy"]) == pytest.approx(correct / len(rows))
        assert out[f"{split}_loss"].shape == ()


def _ref_key_projection(acts: np.ndarray, keys: list[int]) -> np.ndarray:
    """Explicit projection of each neuron's (p*p,) activations on unit cos/sin(w(a+b))."""
    out = np.zeros_like(acts)
    for k in keys:
        for wave in (math.cos, math.sin):
            vec = [wave(2 * math.pi * k * (a + b) / P) for a in range(P) for b in range(P)]
            norm = math.sqrt(sum(v * v for v in vec))
            vec = [v / norm for v in vec]
            for n in range(acts.shape[1]):
                dot = sum(vec[r] * acts[r, n] for r in range(P * P))
                for r in range(P * P):
                    out[r, n] += dot * vec[r]
    return out


@pytest.mark.parametrize("keys", [[], [2], [1, 4, 5]])
def test_restricted_and_excluded_loss_match_explicit_projections(
    setup: Any, keys: list[int]
) -> None:
    model, cache, probe = setup
    acts = cache["mlp_post"][:, -1].double().numpy()
    logits = cache["logits"][:, -1].double().numpy()
    w_l = (model.W_out.detach().double() @ model.W_U.detach().double()).numpy()
    key_part = _ref_key_projection(acts, keys)
    mean_acts = acts.mean(axis=0)
    restricted = (mean_acts + key_part) @ w_l
    restricted += logits.mean(axis=0) - restricted.mean(axis=0)
    excluded = logits - key_part @ w_l
    labels = probe.labels.tolist()
    test, train = probe.test_indices.tolist(), probe.train_indices.tolist()
    expected_restricted = ref_cross_entropy(restricted[test], [labels[r] for r in test])
    expected_excluded = ref_cross_entropy(excluded[train], [labels[r] for r in train])
    assert restricted_loss(model, cache, probe, keys) == pytest.approx(expected_restricted)
    assert excluded_loss(model, cache, probe, keys) == pytest.approx(expected_excluded)
    out = ProgressMeasures().compute(model, cache, probe, ctx(key_frequencies=keys))
    assert float(out["restricted_loss"]) == pytest.approx(expected_restricted)
    assert float(out["excluded_loss"]) == pytest.approx(expected_excluded)


def test_excluded_loss_without_key_frequencies_is_the_train_loss(setup: Any) -> None:
    model, cache, probe = setup
    metrics = TrainingMetrics().compute(model, cache, probe, ctx())
    assert excluded_loss(model, cache, probe, []) == pytest.approx(float(metrics["train_loss"]))


def test_progress_measures_other_fields(setup: Any) -> None:
    model, cache, probe = setup
    out = ProgressMeasures().compute(model, cache, probe, ctx(key_frequencies=[1]))
    coefficients = DominantFrequencies().compute(model, cache, probe, ctx())
    assert float(out["gini_embedding"]) == pytest.approx(
        gini(coefficients["frequency_norms"].astype(np.float64)), rel=1e-5
    )
    fractions = NeuronFreqNorm().compute(model, cache, probe, ctx())["dominant_fraction"]
    assert int(out["specialised_neurons"]) == int((fractions >= 0.85).sum())
    expected_sq = sum(float((w.detach().double() ** 2).sum()) for w in model.parameters())
    assert float(out["sum_squared_weights"]) == pytest.approx(expected_sq)
    w_l = (model.W_out.detach().double() @ model.W_U.detach().double()).numpy()
    comps = [
        math.sqrt(
            sum(
                sum(ref_basis_row(P, i)[c] * w_l[n, c] for c in range(P)) ** 2
                for n in range(w_l.shape[0])
            )
        )
        for i in range(P)
    ]
    per_freq = [math.hypot(comps[2 * k - 1], comps[2 * k]) for k in range(1, P // 2 + 1)]
    assert float(out["gini_neuron_logit"]) == pytest.approx(gini(np.array(per_freq)), rel=1e-6)


def test_progress_measures_needs_key_frequencies(setup: Any) -> None:
    model, cache, probe = setup
    with pytest.raises(ValueError, match="key frequencies"):
        ProgressMeasures().compute(model, cache, probe, ctx())
    given_keys = ProgressMeasures(key_frequencies=[4, 2])
    assert given_keys.compute(model, cache, probe, ctx())["restricted_loss"].shape == ()
    with pytest.raises(ValueError, match=r"distinct integers in 1\.\.5"):
        restricted_loss(model, cache, probe, [6])


def test_key_frequency_selection() -> None:
    fractions = np.zeros((5, 40))
    fractions[1, :20] = 0.9  # 20 specialised neurons on frequency 2
    fractions[3, 20:38] = 0.95  # 18 on frequency 4
    fractions[4, 38] = 0.99  # one stray neuron on frequency 5: not a cluster
    fractions[0, 39] = 0.5  # not specialised
    assert key_frequencies_from_neurons(fractions) == [2, 4]
    assert key_frequencies_from_neurons(np.full((5, 3), 0.2)) == []
    assert key_frequencies_from_embedding(np.array([0.1, 3.0, 0.2, 2.0, 1.0])) == [2, 4]


def test_analyzers_refuse_a_foreign_probe(setup: Any) -> None:
    model, cache, _ = setup
    with pytest.raises(TypeError, match="ModAddData"):
        DominantFrequencies().compute(model, cache, object(), ctx())
    with pytest.raises(KeyError, match="mlp_post"):
        NeuronActivations().compute(model, {}, make_data(CONFIG), ctx())


def test_the_old_fourier_names_of_the_family_warn_and_still_work() -> None:
    from epochstore.families import modadd

    with pytest.warns(DeprecationWarning, match="epochstore.analysis.fourier.fourier_basis"):
        assert modadd.fourier_basis is fourier_basis
    with pytest.warns(DeprecationWarning, match="epochstore.analysis.fourier.fourier_labels"):
        assert modadd.fourier_labels is fourier_labels
