"""Each renderer (the generic ones, and modadd's own) returns the expected traces and axis
sizes, and reads only what it draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from zarr.storage import LocalStore

from epochstore import ArtifactLoader
from epochstore.families.modadd.plots import (
    render_attention_pattern,
    render_dominant_frequencies,
    render_key_frequency_norms,
    render_neuron_dominant_frequency,
    render_neuron_freq_matrix,
    render_neuron_grid,
    render_neuron_heatmap,
    render_progress_measures,
)
from epochstore.families.modadd.plots.freq_matrix import neuron_order
from epochstore.store.instrumented import CountingStore
from epochstore.viz import message_figure, render_accuracy_curves, render_loss_curves

P, D_MLP, EPOCHS = 11, 20, [0, 100, 200, 300]


def counting(run: Path) -> tuple[ArtifactLoader, CountingStore]:
    store = CountingStore(LocalStore(run, read_only=True))
    return ArtifactLoader(store), store


def fields_read(store: CountingStore) -> set[str]:
    """The fields whose chunks or series were read.

    Keys are ``artifacts/<analyzer>/<epoch>/<field>/c...`` or, for the derived series of a
    small field, ``artifacts/<analyzer>/.series/<field>.safetensors``.
    """
    return {key.split("/")[3].removesuffix(".safetensors") for key in store.chunk_reads}


def test_dominant_frequencies_bars_and_threshold(run: Path) -> None:
    ds = ArtifactLoader(run).load_epoch("dominant_frequencies", 300)
    fig = render_dominant_frequencies(ds, 300, threshold=1.0)
    (bar,) = fig.data
    assert bar.type == "bar"
    assert len(bar.x) == P
    assert bar.x[0] == "const"
    assert bar.x[1] == "sin 1"
    np.testing.assert_allclose(bar.y, ds["coefficients"].values)
    strong = [c for c in bar.marker.color if c.endswith("1.0)")]
    assert len(strong) == int((ds["coefficients"].values > 1.0).sum()) > 0
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 1.0
    assert "epoch 300" in fig.layout.title.text
    assert render_dominant_frequencies(ds, 300, threshold=None).layout.shapes == ()


def test_per_epoch_renderer_refuses_the_wrong_epoch(run: Path) -> None:
    ds = ArtifactLoader(run).load_epoch("dominant_frequencies", 300)
    with pytest.raises(ValueError, match="holds epoch 300"):
        render_dominant_frequencies(ds, 200)


def test_neuron_heatmap_reads_one_chunk_and_centres_rdbu(run: Path) -> None:
    loader, store = counting(run)
    ds = loader.load_epoch("neuron_activations", 200)
    store.reset()
    fig = render_neuron_heatmap(ds, 200, neuron=5)
    # Only this epoch's activations, and a small part of them: one 4-neuron chunk of 20.
    assert store.chunk_reads
    assert all("neuron_activations/epoch_00200/activations" in k for k in store.chunk_reads)
    shard = run / "artifacts/neuron_activations/epoch_00200/activations/c/0/0/0"
    assert store.bytes_read < shard.stat().st_size / 2
    (heatmap,) = fig.data
    assert heatmap.type == "heatmap"
    assert np.asarray(heatmap.z).shape == (P, P)
    np.testing.assert_allclose(heatmap.z, ds["activations"].values[5])
    assert heatmap.zmid == 0
    assert heatmap.zmin == -heatmap.zmax
    assert heatmap.colorscale[0][1] == "rgb(103,0,31)"  # RdBu starts dark red
    assert fig.layout.title.text == "Neuron 5 activation, epoch 200"


def test_neuron_heatmap_out_of_range_is_an_index_error(run: Path) -> None:
    ds = ArtifactLoader(run).load_epoch("neuron_activations", 0)
    with pytest.raises(IndexError, match=r"neurons 0\.\.19"):
        render_neuron_heatmap(ds, 0, neuron=D_MLP)


def test_neuron_grid_default_and_chosen_neurons(run: Path) -> None:
    ds = ArtifactLoader(run).load_epoch("neuron_activations", 100)
    fig = render_neuron_grid(ds, 100)
    assert len(fig.data) == 16
    assert all(np.asarray(t.z).shape == (P, P) for t in fig.data)
    assert fig.layout.coloraxis.cmid == 0
    assert [a.text for a in fig.layout.annotations][:3] == ["neuron 0", "neuron 1", "neuron 2"]
    chosen = render_neuron_grid(ds, 100, neurons=[7, 3], columns=2)
    assert [t.name for t in chosen.data] == ["neuron 7", "neuron 3"]
    np.testing.assert_allclose(chosen.data[0].z, ds["activations"].values[7])
    # Two subplots side by side: two x axes with disjoint domains.
    assert chosen.layout.xaxis.domain[1] < chosen.layout.xaxis2.domain[0]


def test_neuron_renderers_use_the_labels_of_a_subset(run: Path) -> None:
    ds = ArtifactLoader(run).load_epoch("neuron_activations", 100)
    subset = ds.isel(neuron=slice(8, 12)).assign_coords(neuron=np.arange(8, 12))
    fig = render_neuron_heatmap(subset, 100, neuron=9)
    np.testing.assert_allclose(fig.data[0].z, ds["activations"].values[9])
    assert [t.name for t in render_neuron_grid(subset, 100).data] == [
        "neuron 8", "neuron 9", "neuron 10", "neuron 11"]
    with pytest.raises(IndexError, match="not in this data"):
        render_neuron_heatmap(subset, 100, neuron=3)


def test_freq_matrix_sorted_by_dominant_frequency(run: Path) -> None:
    ds = ArtifactLoader(run).load_epoch("neuron_freq_norm", 300)
    fig = render_neuron_freq_matrix(ds, 300)
    (heatmap,) = fig.data
    z = np.asarray(heatmap.z)
    assert z.shape == (P // 2, D_MLP)
    assert (heatmap.zmin, heatmap.zmax) == (0, 1)
    assert heatmap.colorscale[0][1] == "#440154"  # Viridis
    order = np.asarray([int(n) for n in heatmap.x])
    dominant = ds["dominant_frequency"].values[order]
    assert (np.diff(dominant) >= 0).all()
    np.testing.assert_allclose(z, ds["norm_matrix"].values[:, order])
    unsorted = render_neuron_freq_matrix(ds, 300, sort=False)
    np.testing.assert_allclose(unsorted.data[0].z, ds["norm_matrix"].values)


def test_neuron_order_puts_dead_neurons_last() -> None:
    assert neuron_order([2, 1, 0, 1], [0.9, 0.5, 0.0, 0.8]).tolist() == [3, 1, 0, 2]


def test_attention_pattern_per_head() -> None:
    patterns = np.random.default_rng(0).random((4, 5, 6))
    ds = xr.Dataset({"patterns": (("head", "a", "b"), patterns)}, coords={"epoch": 7})
    fig = render_attention_pattern(ds, 7)
    assert len(fig.data) == 4
    assert np.asarray(fig.data[2].z).shape == (5, 6)
    assert fig.layout.coloraxis.cmin == 0
    assert fig.layout.coloraxis.cmax == 1
    one = render_attention_pattern(ds, 7, head=1)
    assert len(one.data) == 1
    np.testing.assert_allclose(one.data[0].z, patterns[1])
    flat = xr.Dataset({"patterns": (("q", "k"), patterns[0])})
    assert len(render_attention_pattern(flat, 7).data) == 1


def test_loss_curves_mark_the_epoch_and_read_only_the_losses(run: Path) -> None:
    loader, store = counting(run)
    lazy = loader.load_epochs("training_metrics")
    store.reset()
    fig = render_loss_curves(lazy, 200)
    train, test, marker = fig.data
    assert (train.name, test.name) == ("train loss", "test loss")
    assert list(train.x) == EPOCHS
    assert len(test.y) == len(EPOCHS)
    assert list(marker.x) == [200, 200]
    assert marker.y[1] == pytest.approx(float(test.y[2]))
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.shapes[0].x0 == 200
    assert "(epoch 200)" in fig.layout.title.text
    assert fields_read(store) == {"train_loss", "test_loss"}
    node_reads = [k for k in store.chunk_reads if "/.series/" not in k]
    assert len(node_reads) == 2 * len(EPOCHS)  # no series yet: each epoch, then written
    loader, store = counting(run)
    render_loss_curves(loader.load_epochs("training_metrics"), 200)
    assert sorted(store.chunk_reads) == [  # then one read per field, whatever the epochs
        f"artifacts/training_metrics/.series/{f}.safetensors" for f in ("test_loss", "train_loss")
    ]
    no_marker = render_loss_curves(lazy)
    assert len(no_marker.data) == 2
    assert no_marker.layout.shapes == ()


def test_accuracy_curves(run: Path) -> None:
    fig = render_accuracy_curves(ArtifactLoader(run).load_epochs("training_metrics"), 0)
    assert [t.name for t in fig.data] == ["train accuracy", "test accuracy", "epoch 0"]
    assert tuple(fig.layout.yaxis.range) == (-0.02, 1.02)


def test_curves_name_missing_fields(run: Path) -> None:
    lazy = ArtifactLoader(run).load_epochs("dominant_frequencies")
    with pytest.raises(KeyError, match="train_loss"):
        render_loss_curves(lazy)
    with pytest.raises(ValueError, match="stacked along 'epoch'"):
        render_loss_curves(ArtifactLoader(run).load_epoch("training_metrics", 0))


def test_progress_measures_one_subplot_per_kind(run: Path) -> None:
    fig = render_progress_measures(ArtifactLoader(run).load_epochs("progress_measures"), 100)
    lines = [t for t in fig.data if t.mode == "lines"]
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(lines) == 6
    assert len(markers) == 6
    assert {t.yaxis for t in lines} == {"y", "y2", "y3", "y4"}
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis2.type == "linear"
    assert len(fig.layout.shapes) == 4
    only = render_progress_measures(ArtifactLoader(run).load_epochs("progress_measures"),
                                    fields=["excluded_loss"])
    assert [t.name for t in only.data] == ["excluded loss"]


def test_key_frequency_norms(run: Path) -> None:
    lazy = ArtifactLoader(run).load_epochs("dominant_frequencies")
    fig = render_key_frequency_norms(lazy, 300, key_frequencies=[2, 4])
    assert [t.name for t in fig.data] == ["k = 2", "k = 4"]
    np.testing.assert_allclose(fig.data[1].y, lazy["frequency_norms"].values[:, 3])
    top = render_key_frequency_norms(lazy, top_k=2)
    assert [t.name for t in top.data] == ["k = 2", "k = 4"]
    with pytest.raises(ValueError, match="outside"):
        render_key_frequency_norms(lazy, key_frequencies=[P])


def test_neuron_dominant_frequency_over_epochs(run: Path) -> None:
    loader, store = counting(run)
    lazy = loader.load_epochs("neuron_freq_norm")
    store.reset()
    fig = render_neuron_dominant_frequency(lazy, 300, neuron=3)
    line, marker = fig.data
    assert list(line.x) == EPOCHS
    np.testing.assert_array_equal(line.y, lazy["dominant_frequency"].values[:, 3])
    assert line.marker.cmin == 0
    assert line.marker.cmax == 1
    assert list(marker.x) == [300]
    assert fields_read(store) == {"dominant_frequency", "dominant_fraction"}


def test_message_figure_says_so() -> None:
    fig = message_figure("nothing yet", title="t")
    assert fig.data == ()
    assert fig.layout.annotations[0].text == "nothing yet"
    assert fig.layout.meta["epochstore_message"] == "nothing yet"


def test_moved_renderers_keep_their_old_names_with_a_deprecation_warning() -> None:
    import epochstore.viz

    with pytest.warns(DeprecationWarning, match="moved to epochstore.families.modadd.plots"):
        old = epochstore.viz.render_neuron_heatmap
    assert old is render_neuron_heatmap
