"""The modadd config, data and model: schedules, presets, split, shapes and the activation cache."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from epochstore.families.modadd.config import (
    PRESETS,
    ModAddConfig,
    every_n_schedule,
    get_preset,
    paper_schedule,
)
from epochstore.families.modadd.data import all_pairs, make_data, split_indices
from epochstore.families.modadd.model import CACHE_KEYS, ModAddTransformer, build_model

SMALL = {"p": 11, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 24}


# --- config -------------------------------------------------------------------------------------


def test_paper_schedule_is_the_original_95_checkpoints() -> None:
    expected = (
        list(range(0, 1500, 100))
        + list(range(1500, 9000, 500))
        + list(range(9000, 13000, 100))
        + list(range(13000, 25000, 500))
        + [24999]
    )
    assert list(paper_schedule()) == expected
    assert len(expected) == 95
    assert ModAddConfig().schedule == tuple(expected)


def test_paper_preset_is_the_papers_configuration() -> None:
    cfg = get_preset("paper")
    assert (cfg.p, cfg.frac_train, cfg.num_epochs) == (113, 0.3, 25_000)
    assert (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp) == (128, 4, 32, 512)
    assert (cfg.lr, cfg.weight_decay, cfg.betas) == (1e-3, 1.0, (0.9, 0.98))
    assert (cfg.data_seed, cfg.model_seed) == (598, 999)
    assert len(cfg.schedule) == 95


def test_demo_preset_schedule_is_dense_early_and_ends_at_the_final_epoch() -> None:
    cfg = get_preset("demo")
    schedule = cfg.schedule
    assert 40 <= len(schedule) <= 60
    assert schedule[0] == 0
    assert schedule[-1] == cfg.num_epochs - 1
    gaps = [b - a for a, b in itertools.pairwise(schedule)]
    assert gaps[0] <= gaps[-2]


def test_every_n_schedule_includes_the_final_epoch() -> None:
    assert every_n_schedule(100, 350) == (0, 100, 200, 300, 349)
    assert every_n_schedule(50, 101) == (0, 50, 100)
    assert ModAddConfig(num_epochs=1000, checkpoint_every=250).schedule == (0, 250, 500, 750, 999)
    assert ModAddConfig(num_epochs=10, checkpoint_epochs=(5, 2, 5)).schedule == (2, 5, 9)
    assert paper_schedule(350) == (0, 100, 200, 300, 349)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_round_trips_through_json(name: str) -> None:
    cfg = get_preset(name)
    assert ModAddConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"p": 12}, ValueError),
        ({"p": 1}, ValueError),
        ({"p": 11.0}, TypeError),
        ({"frac_train": 1.0}, ValueError),
        ({"p": 3, "frac_train": 0.05}, ValueError),
        ({"lr": 0}, ValueError),
        ({"num_epochs": 100_001}, ValueError),
        ({"betas": (0.9,)}, ValueError),
        ({"num_epochs": 10, "checkpoint_epochs": (10,)}, ValueError),
        ({"checkpoint_every": 10, "checkpoint_epochs": (1,)}, ValueError),
        ({"checkpoint_every": 0}, ValueError),
        ({"model_seed": True}, TypeError),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ModAddConfig(**changes)  # type: ignore[arg-type]


def test_unknown_config_keys_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown modadd config key\(s\) \['prime'\]"):
        ModAddConfig.from_dict({"prime": 113})
    with pytest.raises(KeyError, match="presets"):
        get_preset("nope")


# --- data -----------------------------------------------------------------------------------------


def test_all_pairs_rows_are_a_times_p_plus_b() -> None:
    p = 7
    inputs, labels = all_pairs(p)
    assert inputs.shape == (p * p, 3)
    assert inputs.dtype == torch.int64
    for a in range(p):
        for b in range(p):
            row = a * p + b
            assert inputs[row].tolist() == [a, b, p]
            assert int(labels[row]) == (a + b) % p


def test_split_is_seeded_disjoint_and_complete() -> None:
    train, test = split_indices(23, 0.3, 598)
    again, _ = split_indices(23, 0.3, 598)
    other, _ = split_indices(23, 0.3, 599)
    assert torch.equal(train, again)
    assert not torch.equal(train, other)
    assert len(train) == int(0.3 * 23 * 23)
    assert sorted(train.tolist() + test.tolist()) == list(range(23 * 23))
    assert train.tolist() == sorted(train.tolist())


def test_make_data_views() -> None:
    data = make_data(ModAddConfig(p=11, frac_train=0.5))
    assert data.train_inputs.shape == (60, 3)
    assert torch.equal(data.test_labels, (data.test_inputs[:, 0] + data.test_inputs[:, 1]) % 11)


# --- model ----------------------------------------------------------------------------------------


def test_default_model_has_the_papers_sizes() -> None:
    model = build_model(ModAddConfig(p=23))
    shapes = {name: tuple(param.shape) for name, param in model.named_parameters()}
    assert shapes == {
        "W_E": (24, 128),
        "W_pos": (3, 128),
        "W_Q": (4, 128, 32),
        "W_K": (4, 128, 32),
        "W_V": (4, 128, 32),
        "W_O": (4, 32, 128),
        "W_in": (128, 512),
        "b_in": (512,),
        "W_out": (512, 128),
        "b_out": (128,),
        "W_U": (128, 23),
    }


def test_build_model_is_seeded_and_leaves_global_rng_alone() -> None:
    cfg = ModAddConfig(**SMALL)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    first = build_model(cfg)
    after = torch.rand(1)
    assert torch.equal(before, after)
    second = build_model(cfg)
    third = build_model(cfg.replace(model_seed=1))
    assert torch.equal(first.W_E, second.W_E)
    assert not torch.equal(first.W_E, third.W_E)


def test_cache_holds_every_activation_with_consistent_values() -> None:
    cfg = ModAddConfig(**SMALL)
    model = build_model(cfg)
    data = make_data(cfg)
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        logits = model(data.inputs, cache=cache)
    n, p = 121, 11
    assert set(cache) == set(CACHE_KEYS)
    expected_shapes = {
        "embed": (n, 3, 16),
        "pos_embed": (3, 16),
        "resid_pre": (n, 3, 16),
        "q": (n, 2, 3, 8),
        "k": (n, 2, 3, 8),
        "v": (n, 2, 3, 8),
        "attn_scores": (n, 2, 3, 3),
        "attn_pattern": (n, 2, 3, 3),
        "attn_z": (n, 2, 3, 8),
        "attn_out": (n, 3, 16),
        "resid_mid": (n, 3, 16),
        "mlp_pre": (n, 3, 24),
        "mlp_post": (n, 3, 24),
        "mlp_out": (n, 3, 16),
        "resid_post": (n, 3, 16),
        "logits": (n, 3, p),
    }
    assert {key: tuple(value.shape) for key, value in cache.items()} == expected_shapes
    assert torch.equal(cache["logits"], logits)
    assert torch.equal(cache["embed"], model.W_E[data.inputs].detach())
    pattern = cache["attn_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(n, 2, 3))
    assert torch.all(pattern[..., 0, 1:] == 0)
    assert torch.all(pattern[..., 1, 2] == 0)
    torch.testing.assert_close(cache["mlp_post"], torch.relu(cache["mlp_pre"]))
    torch.testing.assert_close(cache["resid_mid"], cache["resid_pre"] + cache["attn_out"])
    torch.testing.assert_close(cache["resid_post"], cache["resid_mid"] + cache["mlp_out"])
    torch.testing.assert_close(logits, cache["resid_post"] @ model.W_U.detach())
    assert not any(value.requires_grad for value in cache.values())


def test_forward_matches_a_per_head_loop() -> None:
    model = build_model(ModAddConfig(**SMALL))
    x = make_data(ModAddConfig(**SMALL)).inputs[:5]
    with torch.no_grad():
        resid = model.W_E[x] + model.W_pos
        attn = torch.zeros_like(resid)
        for h in range(model.n_heads):
            q, k, v = resid @ model.W_Q[h], resid @ model.W_K[h], resid @ model.W_V[h]
            scores = q @ k.transpose(1, 2) / 8**0.5
            scores = scores + torch.triu(torch.full((3, 3), float("-inf")), diagonal=1)
            attn += torch.softmax(scores, -1) @ v @ model.W_O[h]
        mid = resid + attn
        post = mid + torch.relu(mid @ model.W_in + model.b_in) @ model.W_out + model.b_out
        torch.testing.assert_close(model(x), post @ model.W_U)


def test_final_logits_equal_the_last_position_of_forward() -> None:
    cfg = ModAddConfig(p=23)
    model = build_model(cfg)
    x = make_data(cfg).inputs
    with torch.no_grad():
        torch.testing.assert_close(model.final_logits(x), model(x)[:, -1], atol=1e-5, rtol=1e-5)


def test_cache_keys_filter() -> None:
    model = ModAddTransformer(5, 8, 2, 4, 8)
    cache: dict[str, torch.Tensor] = {}
    model(all_pairs(5)[0], cache=cache, cache_keys={"mlp_post", "logits"})
    assert set(cache) == {"mlp_post", "logits"}
    with pytest.raises(KeyError, match="unknown cache keys"):
        model(all_pairs(5)[0], cache={}, cache_keys={"hook_mlp_out"})


def test_final_logits_give_the_same_gradients_as_forward() -> None:
    from epochstore.families.modadd.train import loss_fn

    cfg = ModAddConfig(**SMALL)
    data = make_data(cfg)
    grads = []
    for fn in ("forward", "final_logits"):
        model = build_model(cfg)
        logits = model(data.inputs)[:, -1] if fn == "forward" else model.final_logits(data.inputs)
        torch.autograd.backward(loss_fn(logits, data.labels))
        grads.append({name: p.grad for name, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_family_keeps_only_what_its_analyzers_read_by_default() -> None:
    from epochstore.families.modadd import ModAddFamily
    from epochstore.families.modadd.family import DEFAULT_CACHE_KEYS
    from epochstore.families.modadd.model import CACHE_KEYS

    config = {"p": 5, "d_model": 8, "n_heads": 2, "d_head": 4, "d_mlp": 8}
    lean, full = ModAddFamily(), ModAddFamily(cache_keys=None)
    model = lean.build_model(config)
    probe = lean.make_probe(config)
    assert set(lean.run_with_cache(model, probe)) == set(DEFAULT_CACHE_KEYS)
    assert set(full.run_with_cache(model, probe)) == set(CACHE_KEYS)
    # Every built-in analyzer runs on the lean cache.
    from epochstore.interface import EpochContext

    cache = lean.run_with_cache(model, probe)
    for analyzer in lean.analyzers():
        if analyzer.name == "progress_measures":
            continue  # needs key frequencies from a final checkpoint; covered in the pipeline
        context = EpochContext(epoch=0, metrics={}, config=config, params={}, device="cpu")
        assert analyzer.compute(model, cache, probe, context)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_last_position_forward_equals_the_full_forwards_last_position(dtype: torch.dtype) -> None:
    # The paper's sizes at p = 23 (every token, every pair), with non-zero biases.
    cfg = ModAddConfig(p=23)
    model = build_model(cfg).to(dtype)
    with torch.no_grad():
        model.b_in.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
        model.b_out.normal_(0, 0.3, generator=torch.Generator().manual_seed(2))
    x = make_data(cfg).inputs
    full: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        full_logits = model(x, cache=full)
        last_logits = model(x, cache=last, positions="last")
    assert set(last) == set(CACHE_KEYS)
    # What the last query reads: keys and values at every position; everything else at the
    # last position (the scores and pattern of the last query over every key).
    expected = {
        key: value if key in ("k", "v") else value[..., -1:, :] for key, value in full.items()
    }
    assert {k: v.shape for k, v in last.items()} == {k: v.shape for k, v in expected.items()}
    assert torch.equal(last["logits"], last_logits)
    assert torch.equal(last["embed"], full["embed"][:, -1:])  # a lookup: no rounding at all
    # The same maths, reassociated (q, k, v come from per-token tables, W_E W_Q + W_pos W_Q,
    # instead of (W_E + W_pos) W_Q; attention sums broadcast products, not matmuls). In float64
    # the two differ by <= 2e-15 (measured), so 1e-12 shows the computations are the same. In
    # float32 (eps 6e-8) they differ by <= 1.1e-6 (measured, the logits, |x| <= 1.8: ~10 ulps,
    # the rounding of reassociated sums of 32-512 terms); 1e-5 leaves a 10x margin and is the
    # tolerance of final_logits' existing test.
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for key, value in expected.items():
        torch.testing.assert_close(last[key], value, rtol=tol, atol=tol, msg=key)
    torch.testing.assert_close(last_logits, full_logits[:, -1:], rtol=tol, atol=tol)
    torch.testing.assert_close(model.final_logits(x), full_logits[:, -1], rtol=tol, atol=tol)


def test_family_positions_choose_the_forward_and_refuse_anything_else() -> None:
    from epochstore.families.modadd import ModAddFamily

    config = {"p": 5, "d_model": 8, "n_heads": 2, "d_head": 4, "d_mlp": 8}
    family = ModAddFamily()
    model = family.build_model(config)
    probe = family.make_probe(config)
    last = family.run_with_cache(model, probe)
    full = ModAddFamily(positions="all").run_with_cache(model, probe)
    assert family.positions == "last"
    assert last["mlp_post"].shape == (25, 1, 8)
    assert full["mlp_post"].shape == (25, 3, 8)
    torch.testing.assert_close(last["mlp_post"][:, -1], full["mlp_post"][:, -1])
    # Choosing the activations yourself gets every position unless you ask for "last".
    assert ModAddFamily(cache_keys=None).positions == "all"
    assert ModAddFamily(cache_keys={"mlp_post", "attn"}).positions == "all"
    assert ModAddFamily(cache_keys={"logits", "mlp_post"}).positions == "last"
    assert ModAddFamily(cache_keys=None, positions="last").positions == "last"
    with pytest.raises(ValueError, match="positions"):
        ModAddFamily(positions="first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positions"):
        model(probe.inputs, positions="first")  # type: ignore[arg-type]


def test_last_position_forward_gives_the_same_gradients_as_forward() -> None:
    # Its MLP activation is applied in place when mlp_pre is not kept: autograd must agree.
    from epochstore.families.modadd.train import loss_fn

    cfg = ModAddConfig(**SMALL)
    data = make_data(cfg)
    grads = []
    for positions in ("all", "last"):
        model = build_model(cfg)
        logits = model(data.inputs, positions=positions)[:, -1]  # type: ignore[arg-type]
        torch.autograd.backward(loss_fn(logits, data.labels))
        grads.append({name: p.grad for name, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)
