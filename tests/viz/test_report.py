"""`epochstore report`: one self-contained HTML page of a run's main figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from epochstore.cli import main
from epochstore.testing.synthetic_modadd import write_synthetic_run
from epochstore.viz.report import report_figures


def test_report_is_one_self_contained_page(run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(run), "-o", str(out), "--neuron", "3"]) == 0
    assert "self-contained" in capsys.readouterr().err
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1  # the library, inlined once
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched from anywhere
    sections, notes = report_figures(run, neuron=3)
    assert page.count("Plotly.newPlot(") == len(sections) == 9
    assert notes == []
    headings = [heading for heading, _ in sections]
    assert "Neuron 3, epoch 300" in headings  # the last epoch by default
    assert "Neuron-frequency clusters, epoch 300" in headings


def test_report_lists_what_it_left_out(tmp_path: Path) -> None:
    partial = write_synthetic_run(tmp_path / "partial", [0, 10], p=7, d_mlp=4,
                                  key_frequencies=(1,),
                                  analyzers=["dominant_frequencies", "training_metrics"])
    sections, notes = report_figures(partial, epoch=10)
    assert [h for h, _ in sections] == ["Loss", "Accuracy", "Key-frequency norms",
                                        "Dominant frequencies, epoch 10"]
    assert any("progress_measures" in note for note in notes)
    assert any("neuron_activations" in note for note in notes)


def test_report_of_a_missing_run_is_a_clear_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
