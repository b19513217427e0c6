"""The epochstore command on the toy family (the modadd demo has its own slower test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from epochstore.cli import main


def test_train_analyze_ls_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "toy" / "a"
    assert main(["train", str(run), "--family", "toy", "--preset", "demo",
                 "--set", "epochs=[0,2,4]", "--quiet"]) == 0
    assert main(["analyze", str(run), "--quiet", "--analyzers", "output_norm"]) == 0
    assert main(["ls", str(tmp_path / "runs")]) == 0
    header, row = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert cells["run"] == "toy/a"
    assert cells["family"] == "toy"
    assert cells["ckpts"] == "3"
    assert cells["analysed"] == "33%"  # output_norm of 3 analyzers
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "output_norm" in out
    assert "3 epochs (0..4)" in out


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "variant.json" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "x"), "--family", "nope"]) == 2
    assert "unknown model family 'nope'" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "x"), "--family", "toy", "--preset", "huge"]) == 2
    assert "presets" in capsys.readouterr().err
    assert main(["ls", str(tmp_path)]) == 1


def test_ls_and_info_of_a_run_of_artifacts_alone(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from epochstore.testing.unknown_run import write_unknown_run

    run = write_unknown_run(tmp_path / "runs" / "mine", [0, 10])
    assert main(["ls", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mine "))
    assert row.split()[:4] == ["mine", "-", "0", "4"]  # run, family, checkpoints, analyzers
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "family    none: an artifacts store written with ArtifactStore alone" in out
    assert "head_maps" in out
    assert "attn" in out
    assert "2 epochs (0..10)" in out
    assert main(["info", str(tmp_path)]) == 2
    assert "is not a run" in capsys.readouterr().err


def test_storage_options_for_a_local_root_are_an_error_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from epochstore import ArtifactStore

    ArtifactStore(tmp_path / "run").write_epoch("a", 0, {"x": np.float32(1)})
    assert main(["ls", str(tmp_path), "--storage-options", '{"anon": true}']) == 2
    err = capsys.readouterr().err
    assert "storage_options are only for fsspec URLs" in err
    assert "drop them, or pass a URL" in err
