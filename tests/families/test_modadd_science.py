"""On a small grokked run, the science of Nanda et al. (2023) holds.

CPU training is not bit-reproducible across machines and thread counts, so everything is checked
against thresholds, never exact epochs or values. Measured on the session run (p = 23): key
frequencies {1, 5}, ~85% of neurons specialised, restricted loss ~0 at epoch 550 while the
test loss was 0.53, excluded loss 0.41 -> 10.7, embedding Gini 0.015 -> 0.65.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pytest

from epochstore.families.modadd.analyzers import (
    SPECIALISED_THRESHOLD,
    DominantFrequencies,
    NeuronFreqNorm,
    ProgressMeasures,
)
from epochstore.interface import EpochContext, RunContext

if TYPE_CHECKING:
    from tests.families.conftest import TrainedRun


def _first(run: TrainedRun, metric: str, above: float) -> int:
    return next(r.epoch for r in run.manager.records() if r.metrics[metric] >= above)


@pytest.fixture(scope="module")
def key_frequencies(grokked_run: TrainedRun) -> list[int]:
    run = grokked_run
    context = RunContext(
        location=str(run.run_dir),
        family=run.family,
        config=run.config.to_dict(),
        epochs=tuple(run.manager.epochs()),
        load_model=run.load_model,
    )
    params = ProgressMeasures().prepare(context)
    assert params["method"] == "neurons"
    assert params["source_epoch"] == run.config.final_epoch
    keys = params["key_frequencies"]
    assert isinstance(keys, list)
    return keys


def _measures(run: TrainedRun, epoch: int, keys: list[int]) -> dict[str, float]:
    model = run.load_model(epoch)
    cache = run.family.run_with_cache(model, run.probe)
    out = ProgressMeasures().compute(
        model, cache, run.probe, EpochContext(epoch=epoch, params={"key_frequencies": keys})
    )
    return {name: float(value) for name, value in out.items()}


def test_the_run_groks(grokked_run: TrainedRun) -> None:
    memorised = _first(grokked_run, "train_accuracy", 0.99)
    generalised = _first(grokked_run, "test_accuracy", 0.99)
    records = {r.epoch: r.metrics for r in grokked_run.manager.records()}
    assert memorised <= 150
    assert records[memorised]["test_accuracy"] < 0.6
    assert generalised >= 4 * memorised
    assert records[grokked_run.config.final_epoch]["test_accuracy"] >= 0.99


def test_a_handful_of_key_frequencies_dominate(
    grokked_run: TrainedRun, key_frequencies: list[int]
) -> None:
    run = grokked_run
    assert 1 <= len(key_frequencies) <= 6
    model = run.load_model(run.config.final_epoch)
    cache = run.family.run_with_cache(model, run.probe)
    context = EpochContext(epoch=run.config.final_epoch)
    norms = DominantFrequencies().compute(model, cache, run.probe, context)["frequency_norms"]
    energy = norms.astype(np.float64) ** 2
    key_idx = [k - 1 for k in key_frequencies]
    # the embedding agrees with the neurons: its largest frequencies are the key ones
    top = set((np.argsort(-energy)[: len(key_frequencies) + 1] + 1).tolist())
    assert set(key_frequencies) <= top
    assert energy[key_idx].sum() / energy.sum() >= 0.7
    assert len(key_frequencies) / len(norms) <= 0.6

    freq = NeuronFreqNorm().compute(model, cache, run.probe, context)
    specialised = freq["dominant_fraction"] >= SPECIALISED_THRESHOLD
    assert specialised.mean() >= 0.7  # most neurons clustered on one frequency
    on_keys = np.isin(freq["dominant_frequency"][specialised], key_frequencies)
    assert on_keys.mean() >= 0.9


def test_progress_measures_tell_the_story(
    grokked_run: TrainedRun, key_frequencies: list[int]
) -> None:
    run = grokked_run
    records = {r.epoch: r.metrics for r in run.manager.records()}
    memorised = _first(run, "train_accuracy", 0.99)
    generalised = _first(run, "test_accuracy", 0.99)
    epochs = [
        0,
        memorised,
        *[e for e in records if memorised < e < generalised][::2],
        run.config.final_epoch,
    ]
    measures = {e: _measures(run, e, key_frequencies) for e in epochs}
    initial, final = measures[0], measures[run.config.final_epoch]

    assert initial["specialised_neurons"] == 0
    assert final["specialised_neurons"] >= 0.7 * run.config.d_mlp
    assert initial["gini_embedding"] < 0.1
    assert final["gini_embedding"] > 0.4
    assert final["gini_neuron_logit"] > initial["gini_neuron_logit"] + 0.3
    assert final["sum_squared_weights"] < 0.5 * max(
        m["sum_squared_weights"] for m in measures.values()
    )

    # restricted loss falls long before the test loss does: the circuit forms first
    assert final["restricted_loss"] < 0.05
    assert any(
        measures[e]["restricted_loss"] < 0.1 and records[e]["test_loss"] > 0.3 for e in measures
    )
    # excluded loss: memorisation does not need the key frequencies; the grokked model does
    assert measures[memorised]["excluded_loss"] < 1.0
    assert max(m["excluded_loss"] for m in measures.values()) > 1.5 * math.log(run.config.p)
