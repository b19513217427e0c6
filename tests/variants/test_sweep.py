"""Sweeps: names, the grid, a sweep killed mid-way and resumed equals its variants trained alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from epochstore import AnalysisPipeline, EpochstoreError, sweep
from epochstore.cli import main
from epochstore.status import is_finished
from epochstore.sweeps import grid, parse_sweep, variant_names
from epochstore.testing.toy import ToyFamily

from .conftest import artifact_state, assert_bitwise_equal, checkpoint_state

KILL_SCRIPT = Path(__file__).with_name("_kill_sweep.py")


def test_parse_sweep_keeps_json_lists_whole_and_refuses_bad_options() -> None:
    assert parse_sweep(["p=17,19", "betas=[0.9,0.98],[0.9,0.99]", "act=relu,gelu"]) == {
        "p": [17, 19], "betas": [[0.9, 0.98], [0.9, 0.99]], "act": ["relu", "gelu"],
    }
    for bad in (["p"], ["=1,2"], ["p="], ["p=1,,2"], ["p=1,1"], ["p=1", "p=2"]):
        with pytest.raises(EpochstoreError, match="--sweep"):
            parse_sweep(bad)


def test_grid_and_names_are_readable_unique_and_path_safe() -> None:
    points = grid({"p": [17, 19], "lr": [0.001, 1e-05]})
    assert points[0] == {"p": 17, "lr": 0.001}
    assert len(points) == 4
    names = variant_names(points)
    assert names == ["p=17,lr=0.001", "p=17,lr=1e-05", "p=19,lr=0.001", "p=19,lr=1e-05"]
    odd = variant_names([{"name": "a/b"}, {"name": "a b"}, {"betas": [0.9, 0.98]}])
    assert len(set(odd)) == 3
    assert all("/" not in n and " " not in n for n in odd)
    assert odd[2] == "betas=0.9_0.98"
    assert len(variant_names([{"k": "x" * 300}])[0]) <= 120


def _train_alone(run: Path, family: object, config: dict[str, object]) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        family.train(str(run), config)  # type: ignore[attr-defined]
    finally:
        torch.set_num_threads(previous)


SWEEP = {"seed": [1, 2], "n_hidden": [8, 16]}
OVERRIDES = {"epochs": [0, 1, 2, 3, 5, 8]}
MODADD_SWEEP = {"p": [17, 19], "model_seed": [1, 2]}
MODADD_SMALL = {"d_model": 32, "d_mlp": 64, "n_heads": 2, "d_head": 16, "num_epochs": 60,
                "checkpoint_epochs": [0, 20, 30, 40, 50, 59], "lr": 0.01}


def _kill_resume_analyse_and_compare(
    tmp_path: Path,
    family: Any,
    swept: dict[str, list[Any]],
    overrides: dict[str, Any],
    kill_epoch: int,
    saved_before_kill: list[int],
) -> None:
    root = tmp_path / "sweep"
    names = variant_names(grid(swept))
    killed = subprocess.run(
        [sys.executable, str(KILL_SCRIPT), family.name, str(root), names[1], str(kill_epoch),
         json.dumps(swept), json.dumps(overrides), "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert killed.returncode == -9, killed.stderr  # SIGKILL, mid-sweep
    runs = [root / family.name / name for name in names]
    assert is_finished(runs[0])
    assert not is_finished(runs[1])
    assert not runs[2].exists()
    assert [p.name for p in sorted((runs[1] / "checkpoints").glob("*.safetensors"))] == [
        f"checkpoint_epoch_{e:05d}.safetensors" for e in saved_before_kill
    ]

    argv = ["train", str(root), "--family", family.name, "--threads", "1", "--quiet"]
    for key, values in swept.items():
        argv += ["--sweep", f"{key}={','.join(json.dumps(v) for v in values)}"]
    for key, value in overrides.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    assert main(argv) == 0
    assert all(is_finished(run) for run in runs)
    assert main(["analyze", str(root), "--quiet"]) == 0

    for run, point in zip(runs, grid(swept), strict=True):
        alone = tmp_path / "alone" / run.name
        _train_alone(alone, family, {**family.presets()["demo"], **overrides, **point})
        AnalysisPipeline(alone).run(progress=False)
        assert_bitwise_equal(checkpoint_state(run), checkpoint_state(alone), run.name)
        assert_bitwise_equal(artifact_state(run), artifact_state(alone), run.name)

    # Everything done: a third call trains nothing.
    report = sweep(root, family, swept, overrides=overrides, progress=False)
    assert report.skipped == tuple(str(r) for r in runs)
    assert not report.results


def test_a_killed_sweep_resumes_and_every_variant_equals_it_trained_alone(
    tmp_path: Path,
) -> None:
    _kill_resume_analyse_and_compare(tmp_path, ToyFamily(), SWEEP, OVERRIDES, 3, [0, 1, 2, 3])


@pytest.mark.soak
def test_a_killed_modadd_sweep_of_2_primes_x_2_seeds_equals_its_variants_trained_alone(
    tmp_path: Path,
) -> None:
    from epochstore.families.modadd import ModAddFamily

    _kill_resume_analyse_and_compare(
        tmp_path, ModAddFamily(), MODADD_SWEEP, MODADD_SMALL, 30, [0, 20, 30]
    )


def test_sweep_in_processes_and_on_dask_equals_sequential(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    sequential = sweep(tmp_path / "seq", ToyFamily(), {"seed": [1, 2]}, overrides=OVERRIDES,
                       threads=1, progress=False)
    parallel = sweep(tmp_path / "par", ToyFamily(), {"seed": [1, 2]}, overrides=OVERRIDES,
                     workers=2, threads=1, progress=False)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        on_dask = sweep(tmp_path / "dask", ToyFamily(), {"seed": [1, 2]},
                        overrides=OVERRIDES, client=client, threads=1, progress=False)
    for report in (sequential, parallel, on_dask):
        assert report.ok
        assert len(report.results) == 2
    for a, b, c in zip(sequential.runs, parallel.runs, on_dask.runs, strict=True):
        assert_bitwise_equal(checkpoint_state(a), checkpoint_state(b))
        assert_bitwise_equal(checkpoint_state(a), checkpoint_state(c))
        assert is_finished(c)


def test_bad_sweeps_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(EpochstoreError, match="no preset 'nope'"):
        sweep(tmp_path, "toy", {"seed": [1]}, preset="nope")
    with pytest.raises(EpochstoreError, match="at least one"):
        sweep(tmp_path, "toy", {"seed": []})
    assert main(["train", str(tmp_path), "--family", "toy", "--sweep", "seed"]) == 2
