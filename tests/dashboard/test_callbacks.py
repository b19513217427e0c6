"""The dashboard's callbacks, server side, with every read counted (no browser)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from epochstore.cli import main
from epochstore.dashboard import callbacks
from epochstore.dashboard.service import RunState
from epochstore.run import Variant, write_variant
from epochstore.store import ArtifactStore
from epochstore.testing.synthetic_modadd import write_synthetic_run

EPOCHS_A = [0, 100, 200, 300, 400]


def titles(figures: Any) -> list[str]:
    return [f.layout.title.text for f in figures]


def epoch_views(service: Any, state: Any, epoch: int | None, neuron: Any = 0, *,
                nearest: bool = False) -> dict[str, Any]:
    """The run's per-epoch views by name, as the page's callback draws them."""
    run = RunState.from_dict(state)
    picked = callbacks.selection(["neuron"], [neuron])
    figures = callbacks.view_figures(service, state, "epoch", epoch, picked, nearest=nearest)
    return dict(zip(run.view_names("epoch"), figures, strict=True))


def cross_views(service: Any, state: Any, epoch: int | None, neuron: Any = 0) -> dict[str, Any]:
    """The run's cross-epoch views by name."""
    run = RunState.from_dict(state)
    figures = callbacks.view_figures(service, state, "across", epoch, {"neuron": neuron})
    return dict(zip(run.view_names("across"), figures, strict=True))


def message(fig: Any) -> str:
    return str((fig.layout.meta or {}).get("epochstore_message", ""))


def test_selecting_a_variant_reads_no_chunk_data(root: Path,
                                                 counting: Callable[..., Any]) -> None:
    c = counting(root)
    run = str(root / "modadd" / "a")
    options = callbacks.run_options(c.service)
    assert [o["value"] for o in options] == [run, str(root / "modadd" / "b")]
    assert options[0]["label"] == "modadd / modadd/a  (p=11, d_mlp=24)"
    state = callbacks.select_run(c.service, run, None)
    assert state is not None
    assert c.chunk_keys() == []
    store = c.stores[run]
    assert sum(store.metadata_reads.values()) > 0  # it did look, at metadata only
    assert state["epochs"] == EPOCHS_A
    assert state["analyzers"]["neuron_activations"] == EPOCHS_A
    assert state["picks"] == {"neuron": 24}
    dims, shape, dtype, chunks = state["fields"]["neuron_activations"]["activations"]
    assert (dims, shape, dtype, chunks) == (["neuron", "a", "b"], [24, 11, 11], "<f4",
                                           [4, 11, 11])
    # modadd's declared views, in its order: no default view of its analyzers.
    assert [v["name"] for v in state["views"]] == [
        "dominant", "heatmap", "freq_matrix", "grid", "loss", "accuracy", "progress",
        "key_norms", "neuron_freq"]
    assert state["status"] == "complete"
    # A refresh that finds nothing new changes nothing (and still reads no chunk).
    assert callbacks.select_run(c.service, run, state) is None
    assert c.chunk_keys() == []


def test_moving_the_slider_reads_only_that_epochs_chunks(root: Path,
                                                         counting: Callable[..., Any]) -> None:
    c = counting(root)
    run = str(root / "modadd" / "a")
    state = callbacks.select_run(c.service, run, None)
    for epoch in (400, 200):
        c.reset()
        figures = epoch_views(c.service, state, epoch, 9)
        dominant, heatmap, freq_matrix, grid = titles(figures.values())
        assert dominant == f"Embedding Fourier components, epoch {epoch}"
        assert heatmap == f"Neuron 9 activation, epoch {epoch}"
        assert freq_matrix.startswith(f"Neuron-frequency fractions, epoch {epoch} (")
        assert grid == f"Neurons 8-11 over (a, b), epoch {epoch}"
        keys = c.chunk_keys()
        assert keys
        assert all(f"/epoch_{epoch:05d}/" in k for k in keys)
        # The activations: one ranged read of the one chunk holding neurons 8-11 (of 6),
        # shared by the heatmap and the grid.
        acts = [k for k in keys if "/activations/" in k]
        assert len(acts) == 1
        shard = Path(run, "artifacts", acts[0].split("artifacts/", 1)[1])
        assert c.stores[run].chunk_reads[acts[0]] == 2  # shard index, then the chunk
        assert c.bytes_read() < shard.stat().st_size / 2
    # Back to an epoch seen before: served from the cache, nothing read.
    c.reset()
    epoch_views(c.service, state, 400, 9)
    assert c.chunk_keys() == []


def test_cross_epoch_panels_read_once_then_only_move_the_marker(
        root: Path, counting: Callable[..., Any]) -> None:
    c = counting(root)
    state = callbacks.select_run(c.service, str(root / "modadd" / "a"), None)
    figures = list(cross_views(c.service, state, 100, 3).values())
    assert len(figures) == 5
    assert titles(figures)[0] == "Loss (epoch 100)"
    assert titles(figures)[4] == "Neuron 3: dominant frequency over training (epoch 100)"
    first = len(c.chunk_keys())
    assert first > 0
    c.reset()
    moved = list(cross_views(c.service, state, 300, 3).values())
    assert c.chunk_keys() == []
    assert sum(sum(s.metadata_reads.values()) + s.list_calls for s in c.stores.values()) == 0
    assert titles(moved)[0] == "Loss (epoch 300)"
    assert moved[0].layout.shapes[0].x0 == 300
    # Another neuron reads that neuron's entries only.
    c.reset()
    cross_views(c.service, state, 300, 4)
    assert {k.split("/")[1] for k in c.chunk_keys()} == {"neuron_freq_norm"}


def test_slider_follows_the_runs_epochs() -> None:
    state = RunState(run="r", analyzers={"x": (0, 50, 100, 400)}, epochs=(0, 50, 100, 400),
                     status="complete").to_dict()
    low, high, marks, value, disabled = callbacks.slider_props(state, None)
    assert (low, high, value, disabled) == (0, 3, 3, False)  # a new run: its last epoch
    assert marks == {0: "0", 1: "50", 2: "100", 3: "400"}
    assert callbacks.slider_props(state, 100)[3] == 2  # the selected epoch is kept
    assert callbacks.slider_props(state, 380)[3] == 3  # or the nearest one
    assert callbacks.selected_epoch(state, 1) == 50
    assert callbacks.epoch_label(state, 50) == "epoch 50  (2 of 4)"
    assert callbacks.slider_props(RunState().to_dict(), 5)[4] is True  # no epochs: disabled
    many = RunState(epochs=tuple(range(0, 9500, 100))).to_dict()
    labelled = callbacks.slider_props(many, None)[2]
    assert len(labelled) <= callbacks.MAX_LABELLED_MARKS + 1
    assert labelled[94] == "9400"


def test_new_epochs_appear_without_restart(tmp_path: Path,
                                           counting: Callable[..., Any]) -> None:
    run = write_synthetic_run(tmp_path / "modadd" / "live", [0, 100], p=7, d_mlp=8,
                              key_frequencies=(2,))
    c = counting(tmp_path)
    state = callbacks.select_run(c.service, str(run), None)
    assert state is not None
    assert state["epochs"] == [0, 100]
    cross_views(c.service, state, 100, 0)
    write_synthetic_run(run, [0, 100, 200], p=7, d_mlp=8, key_frequencies=(2,))
    c.reset()
    newer = callbacks.select_run(c.service, str(run), state)  # the next refresh tick
    assert newer is not None
    assert newer["epochs"] == [0, 100, 200]
    assert c.chunk_keys() == []
    assert callbacks.slider_props(newer, 100)[3] == 1  # the slider stays on epoch 100
    figures = cross_views(c.service, newer, 200, 0)
    assert list(figures["loss"].data[0].x) == [0, 100, 200]
    # Only the new epoch's nodes are read (and the derived series of small fields, whose
    # entries for the old epochs are current).
    nodes = [k for k in c.chunk_keys() if "/.series/" not in k]
    assert nodes
    assert all("/epoch_00200/" in k for k in nodes)


def test_a_run_being_analysed(tmp_path: Path, counting: Callable[..., Any]) -> None:
    run = write_synthetic_run(tmp_path / "r", [0, 100, 200], p=7, d_mlp=8, key_frequencies=(2,))
    ArtifactStore(run).delete_epoch("neuron_freq_norm", 200)
    c = counting(tmp_path)
    state = callbacks.select_run(c.service, str(run), None)
    assert state is not None
    assert state["status"] == "analysing"
    assert "analysis in progress, 2 of 3 epochs analysed by every analyzer" in state["message"]
    by_panel = epoch_views(c.service, state, 200, 0)
    assert "not analysed yet" in message(by_panel["freq_matrix"])
    assert by_panel["heatmap"].layout.title.text == "Neuron 0 activation, epoch 200"


def test_a_run_without_artifacts_and_a_missing_analyzer(tmp_path: Path,
                                                        counting: Callable[..., Any]) -> None:
    empty = tmp_path / "toy" / "trained"
    assert main(["train", str(empty), "--family", "toy", "--preset", "demo",
                 "--set", "epochs=[0,2,4]", "--quiet"]) == 0
    bare = tmp_path / "modadd" / "bare"
    write_variant(bare, Variant(family="modadd", params={"p": 7}))
    partial = write_synthetic_run(tmp_path / "modadd" / "partial", [0, 10], p=7, d_mlp=8,
                                  key_frequencies=(2,), analyzers=["dominant_frequencies"])
    c = counting(tmp_path)

    state = callbacks.select_run(c.service, str(empty), None)
    assert state is not None
    assert state["status"] == "empty"
    assert "3 checkpoints, no artifacts yet" in state["message"]
    assert "epochstore analyze" in state["message"]
    # The toy family declares no views and has no artifacts: loss and accuracy from the
    # checkpoint records are all there is.
    assert [v["name"] for v in state["views"]] == ["loss", "accuracy"]
    assert epoch_views(c.service, state, None, 0) == {}
    loss = cross_views(c.service, state, None, 0)["loss"]
    assert loss.layout.title.text == "Loss, from checkpoint records"
    assert [t.name for t in loss.data] == ["loss"]

    state = callbacks.select_run(c.service, str(bare), None)
    assert state is not None
    assert "no checkpoints and no artifacts" in state["message"]
    assert state["views"] == []

    state = callbacks.select_run(c.service, str(partial), None)
    assert state is not None
    # Only the views whose analyzers the run holds.
    assert [v["name"] for v in state["views"]] == ["dominant", "key_norms"]
    figures = epoch_views(c.service, state, 10, 0)
    assert figures["dominant"].layout.title.text == "Embedding Fourier components, epoch 10"


def test_two_variants_side_by_side_use_the_nearest_epoch(root: Path,
                                                         counting: Callable[..., Any]) -> None:
    c = counting(root)
    a = callbacks.select_run(c.service, str(root / "modadd" / "a"), None)
    b = callbacks.select_run(c.service, str(root / "modadd" / "b"), None)
    status, title_a, title_b, style_b, columns = callbacks.compare_view(a, b, root=str(root))
    assert (title_a, title_b) == ("modadd/a", "modadd/b")
    assert style_b == {"display": "block"}
    assert columns["gridTemplateColumns"] == "1fr 1fr"
    assert callbacks.pickers(a, b) == {"neuron": 23}
    assert "|" in status
    c.reset()
    figures = epoch_views(c.service, b, 400, 2, nearest=True)
    assert figures["heatmap"].layout.title.text == "Neuron 2 activation, epoch 450 (nearest to 400)"
    assert all("/epoch_00450/" in k for k in c.chunk_keys())
    assert callbacks.compare_view(a, None)[3] == {"display": "none"}


def test_figure_cache_stays_bounded(root: Path, counting: Callable[..., Any]) -> None:
    c = counting(root, figure_cache=6, block_cache=2)
    state = callbacks.select_run(c.service, str(root / "modadd" / "a"), None)
    for _ in range(3):
        for epoch in EPOCHS_A:
            for neuron in (0, 13):
                epoch_views(c.service, state, epoch, neuron)
    assert len(c.service.figures) == 6
    assert len(c.service.blocks) == 2


def test_damaged_chunk_shows_a_message_not_a_crash(tmp_path: Path,
                                                   counting: Callable[..., Any]) -> None:
    run = write_synthetic_run(tmp_path / "r", [0], p=7, d_mlp=8, key_frequencies=(2,))
    chunk = run / "artifacts" / "dominant_frequencies" / "epoch_00000" / "coefficients" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    c = counting(tmp_path)
    state = callbacks.select_run(c.service, str(run), None)
    figure = epoch_views(c.service, state, 0, 0)["dominant"]
    assert "Cannot show epoch 0 of 'dominant_frequencies'" in message(figure)


def test_an_unreadable_run_is_an_error_state(tmp_path: Path,
                                             counting: Callable[..., Any]) -> None:
    run = write_synthetic_run(tmp_path / "r", [0], p=7, d_mlp=8, key_frequencies=(2,),
                              analyzers=["training_metrics"])
    meta = run / "artifacts" / "zarr.json"
    meta.write_text(re.sub(r'"epochstore_format": \d+', '"epochstore_format": 99',
                           meta.read_text()))
    c = counting(tmp_path)
    state = callbacks.select_run(c.service, str(run), None)
    assert state is not None
    assert state["status"] == "error"
    assert "cannot be read" in state["message"]
    assert state["views"] == []
    assert "cannot be read" in message(c.service.figure(RunState.from_dict(state), "loss", None))
    shutil.rmtree(run)
    gone = callbacks.select_run(c.service, str(run), state)
    assert gone is not None
    assert gone["status"] == "error"
    assert "does not exist" in gone["message"]


def test_heatmap_values_match_the_store(root: Path, counting: Callable[..., Any]) -> None:
    from epochstore import ArtifactLoader

    c = counting(root)
    state = callbacks.select_run(c.service, str(root / "modadd" / "a"), None)
    heatmap = epoch_views(c.service, state, 300, 17)["heatmap"]
    expected = ArtifactLoader(root / "modadd" / "a").load_epoch("neuron_activations", 300)
    np.testing.assert_allclose(heatmap.data[0].z, expected["activations"].values[17])


@pytest.mark.parametrize("bad", [None, "x", -3])
def test_a_bad_neuron_value_falls_back_to_neuron_0(root: Path, bad: Any,
                                                   counting: Callable[..., Any]) -> None:
    c = counting(root)
    state = callbacks.select_run(c.service, str(root / "modadd" / "a"), None)
    heatmap = epoch_views(c.service, state, 0, bad)["heatmap"]
    assert heatmap.layout.title.text == "Neuron 0 activation, epoch 0"


def test_attention_panel_only_when_stored(tmp_path: Path, counting: Callable[..., Any]) -> None:
    run = write_synthetic_run(tmp_path / "r", [0, 10], p=7, d_mlp=8, key_frequencies=(2,),
                              analyzers=["training_metrics"])
    patterns = np.random.default_rng(0).random((4, 7, 7)).astype(np.float32)
    for epoch in (0, 10):
        ArtifactStore(run).write_epoch("attention_patterns", epoch, {"patterns": patterns},
                                       dims={"patterns": ("head", "a", "b")})
    c = counting(tmp_path)
    state = callbacks.select_run(c.service, str(run), None)
    attention = epoch_views(c.service, state, 10, 0)["attention"]
    assert len(attention.data) == 4
    assert attention.layout.title.text == "Attention patterns, epoch 10"


def test_grid_blocks_stay_inside_chunks_that_are_not_multiples_of_16(
        tmp_path: Path, counting: Callable[..., Any]) -> None:
    run = write_synthetic_run(tmp_path / "r", [0], p=5, d_mlp=40, key_frequencies=(1,),
                              analyzers=["neuron_activations"],
                              chunks={"neuron_activations": {"activations": (20, 5, 5)}})
    c = counting(tmp_path)
    state = callbacks.select_run(c.service, str(run), None)
    shown = {}
    for neuron in (17, 21, 35):
        grid = epoch_views(c.service, state, 0, neuron)["grid"]
        shown[neuron] = grid.layout.title.text.split(" over")[0]
    assert shown == {17: "Neurons 16-19", 21: "Neurons 20-35", 35: "Neurons 20-35"}


def test_nearest_epoch_titles_are_not_reused_for_exact_epochs(
        root: Path, counting: Callable[..., Any]) -> None:
    c = counting(root)
    b = callbacks.select_run(c.service, str(root / "modadd" / "b"), None)
    near = epoch_views(c.service, b, 400, 0, nearest=True)["dominant"]
    assert near.layout.title.text.endswith("epoch 450 (nearest to 400)")
    nearer = epoch_views(c.service, b, 440, 0, nearest=True)["dominant"]
    assert nearer.layout.title.text.endswith("epoch 450 (nearest to 440)")
    exact = epoch_views(c.service, b, 450, 0)["dominant"]
    assert exact.layout.title.text.endswith("epoch 450")
