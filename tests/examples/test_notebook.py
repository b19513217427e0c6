"""The example notebook runs, top to bottom, against a small run (so it cannot rot)."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
from nbclient import NotebookClient

from epochstore.families.modadd import ModAddConfig, train_run
from epochstore.pipeline import AnalysisPipeline

EXAMPLES = Path(__file__).parents[2] / "examples"
NOTEBOOK = EXAMPLES / "explore_a_run.ipynb"

#: A few seconds of training: the notebook needs checkpoints and neuron activations, not grokking.
TINY = ModAddConfig(p=11, d_mlp=32, num_epochs=60, checkpoint_every=20)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("notebook") / "tiny"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_run(run, TINY)
    finally:
        torch.set_num_threads(threads)
    AnalysisPipeline(run, analyzers=["neuron_activations", "dominant_frequencies"]).run(
        progress=False
    )
    return run


def _with_run(notebook: nbformat.NotebookNode, run: Path) -> nbformat.NotebookNode:
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert cell.source.startswith("RUN = ")
    cell.source = f"RUN = {str(run)!r}"
    return notebook


def test_the_notebook_runs_on_a_small_run(tiny_run: Path, tmp_path: Path) -> None:
    notebook = _with_run(nbformat.read(NOTEBOOK, as_version=4), tiny_run)
    NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "neuron_activations         4 epochs  0..59" in text
    assert "(4, 11, 11)" in text  # one neuron, every epoch
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 2
    tables = [o for o in outputs if "text/html" in o.get("data", {}) and "<table" in
              o["data"]["text/html"]]
    assert len(tables) == 2  # the two checkpoints' metrics, and their weights


def test_the_notebook_and_its_py_twin_agree() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    twin = jupytext.read(EXAMPLES / "explore_a_run.py")
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        (c.cell_type, c.source) for c in twin.cells
    ], "sync them: jupytext --sync examples/explore_a_run.ipynb"
