"""Default views drawn from the manifest alone: one test per kind of field, reads counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from zarr.storage import LocalStore

from epochstore import ArtifactLoader, ArtifactStore
from epochstore.errors import EpochstoreWarning
from epochstore.interface import ViewSource
from epochstore.run import Variant, write_variant
from epochstore.store.instrumented import CountingStore
from epochstore.testing.unknown_run import write_unknown_run
from epochstore.viz import RunSource
from epochstore.viz.views import MAX_CELLS, MAX_POINTS, FieldView, default_views, run_views

EPOCHS = (0, 100, 200)


@pytest.fixture(scope="module")
def unknown(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_unknown_run(tmp_path_factory.mktemp("views") / "mine", EPOCHS)


def counted(run: Path) -> tuple[RunSource, CountingStore]:
    store = CountingStore(LocalStore(run, read_only=True))
    return RunSource(run, loader=ArtifactLoader(store)), store


def view(source: RunSource, analyzer: str, field: str, kind: str) -> FieldView:
    return FieldView(source.fields(analyzer)[field], kind)  # type: ignore[arg-type]


def stored(run: Path, analyzer: str, field: str, epoch: int) -> np.ndarray:
    return np.asarray(ArtifactLoader(run).load_epoch(analyzer, epoch)[field].values)


def test_each_kind_of_field_gets_its_default_views(unknown: Path) -> None:
    source = RunSource(unknown)
    kinds = {v.name: (v.scope, v.picks) for a in source.analyzers()
             for v in default_views(list(source.fields(a).values()))}
    assert kinds == {
        "run_stats__loss__curve": ("across", ()),
        "run_stats__converged__curve": ("across", ()),
        "probe_vector__spectrum__values": ("epoch", ()),
        "probe_vector__spectrum__epoch_heatmap": ("across", ()),
        "probe_vector__counts__values": ("epoch", ()),
        "probe_vector__counts__epoch_heatmap": ("across", ()),
        "weight_map__w__heatmap": ("epoch", ()),
        "weight_map__w__norm": ("across", ()),
        "head_maps__attn__heatmap": ("epoch", ("head",)),
        "head_maps__attn__norm": ("across", ("head",)),
    }


def test_scalar_is_a_curve_over_epochs_with_the_epoch_marked(unknown: Path) -> None:
    source, store = counted(unknown)
    fig = view(source, "run_stats", "loss", "curve").render(source, 100, {})
    assert fig.layout.title.text == "run_stats / loss (epoch 100)"
    np.testing.assert_allclose(fig.data[0].y, [stored(unknown, "run_stats", "loss", e)
                                               for e in EPOCHS], rtol=1e-6)
    assert list(fig.data[0].x) == list(EPOCHS)
    assert fig.layout.shapes[0].x0 == 100
    fields = {k.split("/")[3].removesuffix(".safetensors") for k in store.chunk_reads}
    assert fields == {"loss"}  # one field, not both


def test_bool_and_int_fields_draw_as_numbers(unknown: Path) -> None:
    source = RunSource(unknown)
    converged = view(source, "run_stats", "converged", "curve").render(source, None, {})
    assert converged.data[0].y.dtype == np.float64
    assert set(converged.data[0].y) <= {0.0, 1.0}
    counts = view(source, "probe_vector", "counts", "values").render(source, 200, {})
    assert counts.data[0].type == "bar"
    np.testing.assert_array_equal(counts.data[0].y,
                                  stored(unknown, "probe_vector", "counts", 200))


def test_1d_is_bars_at_the_epoch_and_a_heatmap_across_epochs(unknown: Path) -> None:
    source, store = counted(unknown)
    bars = view(source, "probe_vector", "spectrum", "values").render(source, 100, {})
    assert bars.layout.title.text == "probe_vector / spectrum, epoch 100"
    np.testing.assert_array_equal(bars.data[0].y, stored(unknown, "probe_vector", "spectrum", 100))
    assert all("/epoch_00100/spectrum/" in k for k in store.chunk_reads)
    across = view(source, "probe_vector", "spectrum", "epoch_heatmap").render(source, 200, {})
    assert across.data[0].z.shape == (len(EPOCHS), 16)
    assert list(across.data[0].y) == list(EPOCHS)
    assert across.layout.shapes[0].y0 == 200
    assert across.layout.title.text == "probe_vector / spectrum over epochs (epoch 200)"


def test_2d_is_a_heatmap_and_its_norm_over_epochs(unknown: Path) -> None:
    source = RunSource(unknown)
    heat = view(source, "weight_map", "w", "heatmap").render(source, 200, {})
    np.testing.assert_array_equal(heat.data[0].z, stored(unknown, "weight_map", "w", 200))
    assert heat.layout.title.text == "weight_map / w, epoch 200"
    norm = view(source, "weight_map", "w", "norm").render(source, 0, {})
    expected = [np.linalg.norm(stored(unknown, "weight_map", "w", e)) for e in EPOCHS]
    np.testing.assert_allclose(norm.data[0].y, expected, rtol=1e-6)


def test_3d_heatmap_of_the_picked_slice_reads_its_chunk_only(unknown: Path) -> None:
    source, store = counted(unknown)
    heat = view(source, "head_maps", "attn", "heatmap").render(source, 100, {"head": 2})
    assert heat.layout.title.text == "head_maps / attn, head 2, epoch 100"
    np.testing.assert_array_equal(heat.data[0].z, stored(unknown, "head_maps", "attn", 100)[2])
    # One ranged read of the epoch's shard: its index, then the one chunk of head 2.
    assert dict(store.chunk_reads) == {"artifacts/head_maps/epoch_00100/attn/c/0/0/0": 2}
    store.reset()
    norm = view(source, "head_maps", "attn", "norm").render(source, 100, {"head": 1})
    expected = [np.linalg.norm(stored(unknown, "head_maps", "attn", e)[1]) for e in EPOCHS]
    np.testing.assert_allclose(norm.data[0].y, expected, rtol=1e-6)
    assert sorted(store.chunk_reads.values()) == [2] * len(EPOCHS)  # one chunk per epoch
    # One stacked read: no epoch's metadata (its zarr.json) is read on the way.
    assert not [k for k in store.metadata_reads if "/epoch_" in k]
    with pytest.raises(IndexError, match=r"head 3 is out of range: .* heads 0..2"):
        view(source, "head_maps", "attn", "heatmap").render(source, 100, {"head": 3})


def test_norm_over_epochs_reads_batches_of_epochs(unknown: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from epochstore.viz import run_source

    source = RunSource(unknown)
    spec = source.fields("weight_map")["w"]
    per_epoch = np.dtype(spec.dtype).itemsize * int(np.prod(spec.shape))
    monkeypatch.setattr(run_source, "NORM_BATCH_BYTES", 2 * per_epoch)  # 2 epochs a batch
    sizes: list[int] = []
    original = run_source._l2_norms

    def l2_norms(block: np.ndarray) -> np.ndarray:
        sizes.append(len(block))
        return original(block)

    monkeypatch.setattr(run_source, "_l2_norms", l2_norms)
    norm = source.load_series("weight_map", ["w"], norm=True)
    assert sizes == [2, 1]  # 3 epochs: a batch of 2, then 1
    expected = [np.linalg.norm(stored(unknown, "weight_map", "w", e)) for e in EPOCHS]
    np.testing.assert_allclose(norm["w"].values, expected, rtol=1e-6)


def test_big_fields_are_downsampled_with_a_note_never_megabytes(tmp_path: Path) -> None:
    run = tmp_path / "big"
    store = ArtifactStore(run)
    rng = np.random.default_rng(0)
    store.write_epoch("big", 0, {
        "matrix": rng.random((1500, 2100), dtype=np.float32),  # 12.6 MB raw
        "vector": rng.random(300_000, dtype=np.float32),
        "cube": rng.random((2, 3, 700, 900), dtype=np.float32),
    }, dims={"matrix": ("r", "c"), "vector": ("k",), "cube": ("layer", "head", "q", "kk")})
    source = RunSource(run)
    fields = source.fields("big")
    matrix = FieldView(fields["matrix"], "heatmap").render(source, 0, {})
    assert matrix.data[0].z.size <= MAX_CELLS
    assert "downsampled" in matrix.layout.meta["epochstore_note"]
    assert "downsampled" in matrix.layout.annotations[0].text
    assert len(matrix.to_json()) < 1_000_000
    np.testing.assert_array_equal(
        matrix.data[0].z[1], np.asarray(ArtifactLoader(run).load_epoch("big", 0)["matrix"]
                                        .values)[int(matrix.data[0].y[1])][::_step(matrix)])
    vector = FieldView(fields["vector"], "values").render(source, 0, {})
    assert vector.data[0].type == "scatter"
    assert vector.data[0].y.size <= MAX_POINTS
    assert len(vector.to_json()) < 200_000
    cube = FieldView(fields["cube"], "heatmap").render(source, 0, {"layer": 1})
    assert cube.layout.title.text == "big / cube, layer 1, head 0, epoch 0"
    assert cube.data[0].z.size <= MAX_CELLS
    assert len(cube.to_json()) < 1_000_000


def _step(fig: object) -> int:
    x = fig.data[0].x  # type: ignore[attr-defined]
    return int(x[1] - x[0])


def test_run_views_put_declared_views_first_and_fall_back_to_defaults(tmp_path: Path) -> None:
    run = write_unknown_run(tmp_path / "orphan", [0])
    write_variant(run, Variant(family="not_installed_here", params={}))
    with pytest.warns(EpochstoreWarning, match="unknown model family 'not_installed_here'"):
        views, note = run_views(RunSource(run), "not_installed_here", checkpoints=False)
    assert "not available here: drawn from its manifests" in note
    assert len(views) == 10  # every field's default views
    alone, note = run_views(RunSource(run), None, checkpoints=True)
    assert note == ""
    assert [v.name for v in alone[-2:]] == ["loss", "accuracy"]  # from checkpoint records


class _FamilyWithBrokenViews:
    name = "viewsbroken"

    def views(self) -> list[object]:
        raise RuntimeError("views module missing")


def test_a_family_whose_views_fail_is_drawn_from_its_manifests(
        unknown: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from epochstore import plugins

    monkeypatch.setitem(plugins._REGISTERED, "viewsbroken", _FamilyWithBrokenViews)
    with pytest.warns(EpochstoreWarning, match="views of model family 'viewsbroken' failed: "
                                               "RuntimeError: views module missing"):
        views, note = run_views(RunSource(unknown), "viewsbroken", checkpoints=False)
    assert len(views) == 10
    assert "not available here" in note


def test_run_source_location_and_its_deprecated_name(tmp_path: Path) -> None:
    source = RunSource(tmp_path / "run")
    assert source.location == str(tmp_path / "run")
    assert isinstance(source, ViewSource)
    with pytest.warns(DeprecationWarning, match="RunSource.location"):
        assert source.run == source.location
