"""Any run, from its manifests: a run written with ArtifactStore alone, and a run whose family
plug-in is broken, listed by `epochstore ls` and shown by the dashboard's service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from epochstore.dashboard import callbacks
from epochstore.dashboard.service import RunState
from epochstore.errors import EpochstoreWarning
from epochstore.run import Variant, write_variant
from epochstore.testing.synthetic_modadd import write_synthetic_run
from epochstore.testing.unknown_run import write_unknown_run

EPOCHS = (0, 100, 200)


def _broken_plugin(site: Path) -> Path:
    """A distribution whose ``epochstore.families`` entry point names a module that is not
    there: installed metadata only, as a half-removed package leaves behind."""
    info = site / "brokenfam-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenfam\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[epochstore.families]\nbrokenfam = brokenfam_is_not_installed.family:Family\n")
    return site


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_unknown_run(root / "mine", EPOCHS)
    write_synthetic_run(root / "modadd" / "a", [0, 100], p=7, d_mlp=8, key_frequencies=(2,))
    broken = write_unknown_run(root / "broken", [0, 100])
    write_variant(broken, Variant(family="brokenfam", params={"seed": 1}))
    return root


def test_ls_lists_every_run_with_every_analyzer(runs: Path, tmp_path: Path) -> None:
    site = _broken_plugin(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site),
                                                        os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "epochstore.cli", "ls", str(runs)],
                         capture_output=True, text=True, env=env, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 4  # the header and three runs
    mine = next(line for line in lines if line.startswith("mine "))
    assert mine.split()[1:4] == ["-", "0", "4"]  # family, checkpoints, analyzers
    broken = next(line for line in lines if line.startswith("broken "))
    assert broken.split()[1] == "brokenfam"  # installed (broken): listed like any other
    assert "(not installed)" not in broken
    assert any(line.split()[1] == "modadd" for line in lines[1:])
    listed = subprocess.run([sys.executable, "-m", "epochstore.cli", "ls", str(runs), "--json"],
                            capture_output=True, text=True, env=env, check=True).stdout
    rows = {Path(r["run"]).name: r for r in json.loads(listed)}
    assert rows["mine"]["analyzers"] == ["head_maps", "probe_vector", "run_stats", "weight_map"]


def test_a_family_not_installed_is_said_so_by_ls(runs: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from epochstore.cli import main

    assert main(["ls", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "brokenfam (not installed)" in out


def test_a_run_of_artifacts_alone_is_shown_from_its_manifests(
        runs: Path, counting: Callable[..., Any]) -> None:
    c = counting(runs)
    options = callbacks.run_options(c.service)
    assert {"label": "artifacts only / mine", "value": str(runs / "mine")} in options
    state = callbacks.select_run(c.service, str(runs / "mine"), None)
    assert state is not None
    assert c.chunk_keys() == []
    assert state["status"] == "complete"
    assert state["family"] is None
    assert state["picks"] == {"head": 3}
    run = RunState.from_dict(state)
    assert len(run.view_names("epoch")) == 4  # 1-D x 2, 2-D, 3-D
    assert len(run.view_names("across")) == 6
    for epoch in (100, 200):
        c.reset()
        figures = callbacks.view_figures(c.service, state, "epoch", epoch, {"head": 1})
        assert [f.layout.title.text for f in figures] == [
            f"head_maps / attn, head 1, epoch {epoch}", f"probe_vector / spectrum, epoch {epoch}",
            f"probe_vector / counts, epoch {epoch}", f"weight_map / w, epoch {epoch}"]
        assert c.chunk_keys()
        assert all(f"/epoch_{epoch:05d}/" in k for k in c.chunk_keys())
        across = callbacks.view_figures(c.service, state, "across", epoch, {"head": 1})
        assert all(f.layout.title.text.endswith(f"(epoch {epoch})") for f in across)
    c.reset()
    callbacks.view_figures(c.service, state, "across", 0, {"head": 1})
    assert c.chunk_keys() == []  # moving the slider only moves the markers


def test_a_broken_plugin_warns_and_its_run_is_drawn_from_its_manifests(
        runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        counting: Callable[..., Any]) -> None:
    monkeypatch.syspath_prepend(str(_broken_plugin(tmp_path / "site")))
    c = counting(runs)
    assert len(callbacks.run_options(c.service)) == 3
    with pytest.warns(EpochstoreWarning, match=r"plug-in 'brokenfam' .* failed to load"):
        state = callbacks.select_run(c.service, str(runs / "broken"), None)
    assert state is not None
    assert state["status"] == "complete"
    assert "family 'brokenfam' is not available here: drawn from its manifests" in state[
        "message"]
    figures = callbacks.view_figures(c.service, state, "epoch", 100, {})
    assert figures[0].layout.title.text == "head_maps / attn, head 0, epoch 100"
    # The other runs are unaffected.
    other = callbacks.select_run(c.service, str(runs / "modadd" / "a"), None)
    assert other is not None
    assert other["views"][0]["name"] == "dominant"
