"""Roots in a bucket: a sweep trained into s3:// (moto's server), analysed and listed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from epochstore.cli import main
from epochstore.status import is_finished


def test_a_sweep_in_a_bucket_is_trained_analysed_and_listed(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    root = s3.url("runs")
    options = ["--storage-options", json.dumps(s3.storage_options)]
    train = ["train", root, "--family", "toy", "--sweep", "seed=1,2", "--set", "epochs=[0,1,2]",
             "--threads", "1", "--quiet", *options]
    assert main(train) == 0
    runs = [f"{root}/toy/seed=1", f"{root}/toy/seed=2"]
    assert all(is_finished(run, storage_options=s3.storage_options) for run in runs)
    assert main(["analyze", root, "--quiet", *options]) == 0
    err = capsys.readouterr().err
    assert f"{runs[0]}: 9 missing" in err
    assert "wrote 18 (analyzer, epoch) pairs of 2 runs" in err

    assert main(["ls", root, "--json", *options]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["run"] for row in rows] == runs
    assert [row["swept"] for row in rows] == [{"seed": 1}, {"seed": 2}]
    assert all(row["analysed"] == 1.0 for row in rows)
    assert all(row["checkpoints"] == 3 for row in rows)
    assert main(["ls", root, *options]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["run", "toy/seed=1", "toy/seed=2"]

    # A second sweep call trains nothing; a second analyze computes nothing.
    assert main(train) == 0
    assert "2 already done" in capsys.readouterr().err
    assert main(["analyze", root, "--quiet", *options]) == 0
    assert "wrote 0 (analyzer, epoch) pairs" in capsys.readouterr().err


def test_a_family_that_trains_locally_only_is_refused_a_url(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", s3.url("runs"), "--family", "modadd", "--sweep", "p=17", "--quiet",
            "--storage-options", json.dumps(s3.storage_options)]
    assert main(argv) == 1  # the variant failed, with the reason printed
    assert "trains into local directories only" in capsys.readouterr().err
