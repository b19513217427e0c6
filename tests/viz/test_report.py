"""`epochstore report`: one self-contained HTML page of a run's main figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from epochstore import ArtifactStore
from epochstore.cli import main
from epochstore.testing.synthetic_modadd import write_synthetic_run
from epochstore.testing.unknown_run import write_unknown_run
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
    assert "Neuron 3 activation, epoch 300" in headings  # the last epoch by default
    assert "Loss (epoch 300)" in headings  # the cross-epoch views mark it
    assert any(h.startswith("Neuron-frequency fractions, epoch 300") for h in headings)


def test_report_notes_what_it_left_out(tmp_path: Path) -> None:
    partial = write_synthetic_run(tmp_path / "partial", [0, 10], p=7, d_mlp=4,
                                  key_frequencies=(1,),
                                  analyzers=["dominant_frequencies", "training_metrics"])
    ArtifactStore(partial).delete_epoch("dominant_frequencies", 10)
    sections, notes = report_figures(partial, epoch=10)
    # The views of analyzers the run lacks are not offered; an epoch not analysed is noted.
    assert [h for h, _ in sections] == [
        "Loss (epoch 10)", "Accuracy (epoch 10)",
        "Key-frequency norms of the embedding (epoch 10)"]
    assert notes == [("Dominant frequencies: epoch 10 of ['dominant_frequencies'] is not "
                     "analysed")]


def test_report_of_a_missing_run_is_a_clear_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_of_a_run_written_with_artifact_store_alone(tmp_path: Path) -> None:
    run = write_unknown_run(tmp_path / "mine", [0, 50, 100])
    out = tmp_path / "mine.html"
    assert main(["report", str(run), "-o", str(out), "--pick", "head=2"]) == 0
    sections, notes = report_figures(run, selection={"head": 2})
    assert notes == []
    headings = [h for h, _ in sections]
    assert headings == [
        "head_maps / attn, head 2, epoch 100", ("head_maps / attn: norm of head 2 over epochs "
        "(epoch 100)"), "probe_vector / spectrum, epoch 100",
        "probe_vector / spectrum over epochs (epoch 100)", "probe_vector / counts, epoch 100",
        "probe_vector / counts over epochs (epoch 100)", "run_stats / loss (epoch 100)",
        "run_stats / converged (epoch 100)", "weight_map / w, epoch 100",
        "weight_map / w: norm over epochs (epoch 100)"]
    page = out.read_text()
    assert page.count("Plotly.newPlot(") == len(sections)
    assert "artifacts only" in page
    # By default the first slice of a field of 3 or more dims.
    first = dict(report_figures(run)[0])
    assert "head_maps / attn, head 0, epoch 100" in first


def test_report_of_a_directory_that_is_no_run(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")]) == 2
    assert "is not a run" in capsys.readouterr().err


def test_report_of_a_root_draws_the_variant_table_and_peer_overlays(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from epochstore import sweep
    from epochstore.testing.toy import ToyFamily

    root = tmp_path / "runs"
    sweep(root, ToyFamily(), {"seed": [1, 2, 3]}, overrides={"epochs": [0, 2, 4]}, threads=1,
          progress=False)
    out = tmp_path / "root.html"
    assert main(["report", str(root), "-o", str(out)]) == 0
    assert "self-contained" in capsys.readouterr().err
    page = out.read_text()
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    assert page.count("<tr>") == 1 + 3  # the header and one row per variant
    for seed in (1, 2, 3):
        assert f"<td>toy/seed={seed}</td>" in page
    # The peer overlay of the family's one metric: one trace per variant.
    assert page.count("Plotly.newPlot(") == 1
    assert "<h2>toy / loss</h2>" in page
    assert r"toy \u002f loss: 3 variants" in page  # the figure's title, as plotly's JSON has it
    assert page.count('"name":"seed=') == 3
