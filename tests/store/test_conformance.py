"""The store conformance suite: every test runs on every backend (see conftest.BACKENDS)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from epochstore import (
    AnalyzerNotFoundError,
    CorruptArtifactError,
    EpochExistsError,
    EpochNotFoundError,
    InvalidEpochError,
    InvalidNameError,
    ReadOnlyError,
    SchemaMismatchError,
    StoreFormatError,
    UnsupportedArrayError,
)
from epochstore.store.manifest import CREATED_FORMAT

if TYPE_CHECKING:
    from conftest import Backend

ACT_DIMS = {"activations": ("neuron", "a", "b")}


def _act(seed: int, shape: tuple[int, ...] = (8, 5, 5)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal(shape), 0).astype(np.float32)


def _write(store: Any, epoch: int, **kwargs: Any) -> np.ndarray:
    data = _act(epoch)
    store.write_epoch("neuron_activations", epoch, {"activations": data}, dims=ACT_DIMS, **kwargs)
    return data


def test_round_trip_one_epoch(backend: Backend) -> None:
    store = backend.store()
    data = _write(store, 100)
    ds = backend.loader().load_epoch("neuron_activations", 100)
    assert isinstance(ds, xr.Dataset)
    assert ds["activations"].dims == ("neuron", "a", "b")
    assert ds.attrs["epoch"] == 100
    assert int(ds["epoch"]) == 100
    np.testing.assert_array_equal(ds["activations"].values, data)


def test_get_epochs_is_sorted_and_has_epoch_agrees(backend: Backend) -> None:
    store = backend.store()
    for epoch in [300, 0, 20, 99999, 5]:
        _write(store, epoch)
    loader = backend.loader()
    assert loader.get_epochs("neuron_activations") == [0, 5, 20, 300, 99999]
    assert loader.has_epoch("neuron_activations", 20)
    assert not loader.has_epoch("neuron_activations", 21)
    assert loader.get_available_analyzers() == ["neuron_activations"]


def test_many_fields_dtypes_and_scalars(backend: Backend) -> None:
    store = backend.store()
    outputs = {
        "matrix": np.arange(12, dtype=np.int64).reshape(3, 4),
        "flags": np.array([True, False, True]),
        "loss": np.float32(0.25),
        "empty": np.zeros((0, 4), dtype=np.float64),
        "complex_values": np.array([1 + 2j, 3 - 1j], dtype=np.complex64),
    }
    store.write_epoch("metrics", 7, outputs)
    ds = backend.loader().load_epoch("metrics", 7)
    for name, value in outputs.items():
        got = ds[name].values
        assert got.dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(got, value)
    assert ds["matrix"].dims == ("matrix_dim_0", "matrix_dim_1")
    assert ds["loss"].dims == ()


def test_writing_an_existing_epoch_is_refused_without_damage(backend: Backend) -> None:
    store = backend.store()
    data = _write(store, 10)
    with pytest.raises(EpochExistsError, match="overwrite=True"):
        store.write_epoch("neuron_activations", 10, {"activations": data + 1}, dims=ACT_DIMS)
    np.testing.assert_array_equal(
        backend.loader().load_epoch("neuron_activations", 10)["activations"].values, data
    )


def test_overwrite_replaces_the_whole_epoch(backend: Backend) -> None:
    store = backend.store()
    _write(store, 10)
    new = _act(999)
    store.write_epoch("neuron_activations", 10, {"activations": new}, overwrite=True)
    loaded = backend.loader().load_epoch("neuron_activations", 10)["activations"].values
    np.testing.assert_array_equal(loaded, new)
    assert backend.loader().get_epochs("neuron_activations") == [10]


def test_delete_epoch(backend: Backend) -> None:
    store = backend.store()
    _write(store, 1)
    _write(store, 2)
    store.delete_epoch("neuron_activations", 1)
    assert store.get_epochs("neuron_activations") == [2]
    with pytest.raises(EpochNotFoundError):
        store.delete_epoch("neuron_activations", 1)
    with pytest.raises(EpochNotFoundError, match=r"available epochs: \[2\]"):
        backend.loader().load_epoch("neuron_activations", 1)


def test_delete_analyzer(backend: Backend) -> None:
    store = backend.store()
    _write(store, 1)
    store.delete_analyzer("neuron_activations")
    assert store.get_available_analyzers() == []
    _write(store, 1)  # a fresh start, with a new schema allowed
    assert store.get_epochs("neuron_activations") == [1]


def test_manifest_is_metadata_only_and_complete(backend: Backend) -> None:
    store = backend.store()
    store.create_analyzer("neuron_activations", version="2", params={"key_frequencies": [3, 7]})
    _write(store, 0)
    _write(store, 5)
    manifest = backend.loader().manifest("neuron_activations")
    field = manifest.fields["activations"]
    assert field.dims == ("neuron", "a", "b")
    assert field.shape == (8, 5, 5)
    assert np.dtype(field.dtype) == np.float32
    assert manifest.epochs == (0, 5)
    assert manifest.version == "2"
    assert manifest.params == {"key_frequencies": [3, 7]}
    assert manifest.codec.cname == "lz4"
    assert manifest.codec.checksum


def test_create_analyzer_is_idempotent_and_refuses_changes(backend: Backend) -> None:
    store = backend.store()
    store.create_analyzer("a", version="1", params={"k": 1})
    store.create_analyzer("a", version="1", params={"k": 1})
    with pytest.raises(SchemaMismatchError, match="delete_analyzer"):
        store.create_analyzer("a", version="2", params={"k": 1})


@pytest.mark.parametrize(
    ("outputs", "dims", "match"),
    [
        ({"activations": np.zeros((8, 5, 4), np.float32)}, None, r"\(8, 5, 5\)"),
        ({"activations": np.zeros((8, 5, 5), np.float64)}, None, "float32|<f4"),
        ({"activations": np.zeros((8, 5, 5), np.float32), "extra": np.zeros(1)}, None, "fields"),
        ({"other": np.zeros((8, 5, 5), np.float32)}, None, "fields"),
        (
            {"activations": np.zeros((8, 5, 5), np.float32)},
            {"activations": ("x", "y", "z")},
            "dims",
        ),
    ],
)
def test_schema_changes_between_epochs_are_refused(
    backend: Backend, outputs: dict[str, Any], dims: Any, match: str
) -> None:
    store = backend.store()
    _write(store, 0)
    with pytest.raises(SchemaMismatchError, match=match):
        store.write_epoch("neuron_activations", 1, outputs, dims=dims)
    assert store.get_epochs("neuron_activations") == [0]


@pytest.mark.parametrize("name", ["../x", "A", ".hidden", "a/b", "", "x y", "__init__"])
def test_bad_analyzer_and_field_names_are_refused_and_leave_no_trace(
    backend: Backend, name: str
) -> None:
    store = backend.store()
    with pytest.raises(InvalidNameError):
        store.write_epoch(name, 0, {"x": np.zeros(2)})
    with pytest.raises(InvalidNameError):
        store.write_epoch("ok", 0, {name: np.zeros(2)})
    with pytest.raises(InvalidNameError):
        store.write_epoch("ok", 0, {"x": np.zeros(2)}, dims={"x": (name,)})
    assert store.get_available_analyzers() == []


@pytest.mark.parametrize("epoch", [-1, 100000, 1.5, "3", True])
def test_bad_epochs_are_refused(backend: Backend, epoch: Any) -> None:
    store = backend.store()
    with pytest.raises(InvalidEpochError):
        store.write_epoch("a", epoch, {"x": np.zeros(2)})


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.array(["a", "b"]), "dtype"),
        (np.array([object(), 1], dtype=object), "dtype"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "dtype"),
    ],
)
def test_unsupported_arrays_are_refused(backend: Backend, value: Any, match: str) -> None:
    store = backend.store()
    with pytest.raises(UnsupportedArrayError, match=match):
        store.write_epoch("a", 0, {"x": value})
    with pytest.raises(UnsupportedArrayError, match="non-empty mapping"):
        store.write_epoch("a", 0, {})


def test_reserved_epoch_dimension_is_refused(backend: Backend) -> None:
    with pytest.raises(InvalidNameError, match="reserved"):
        backend.store().write_epoch("a", 0, {"x": np.zeros(2)}, dims={"x": ("epoch",)})


def test_unknown_analyzer_and_epoch(backend: Backend) -> None:
    store = backend.store()
    _write(store, 3)
    loader = backend.loader()
    with pytest.raises(AnalyzerNotFoundError, match="neuron_activations"):
        loader.get_epochs("nope")
    with pytest.raises(AnalyzerNotFoundError):
        loader.load_epoch("nope", 3)
    with pytest.raises(EpochNotFoundError, match=r"\[4\]"):
        loader.load_epoch("neuron_activations", 4)
    with pytest.raises(EpochNotFoundError, match=r"\[4\]"):
        loader.load_epochs("neuron_activations", [3, 4])


def test_loader_on_an_empty_location_lists_nothing(backend: Backend) -> None:
    loader = backend.loader()
    assert loader.get_available_analyzers() == []
    with pytest.raises(AnalyzerNotFoundError):
        loader.get_epochs("x")


def test_loader_on_a_missing_directory_says_so(tmp_path: Any) -> None:
    from epochstore import ArtifactLoader, RunNotFoundError

    with pytest.raises(RunNotFoundError, match="does not exist"):
        ArtifactLoader(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_loader_refuses_writes(backend: Backend) -> None:
    _write(backend.store(), 0)
    loader = backend.loader()
    with pytest.raises(ReadOnlyError, match="ArtifactStore"):
        loader.write_epoch("neuron_activations", 1, {"activations": _act(1)})
    with pytest.raises(ReadOnlyError):
        loader.delete_epoch("neuron_activations", 0)
    assert loader.get_epochs("neuron_activations") == [0]


def test_unknown_format_version_is_refused(backend: Backend) -> None:
    store = backend.store()
    _write(store, 0)
    import zarr

    group = zarr.open_group(store.store, path=store.root_path, mode="a")
    group.attrs["epochstore_format"] = 99
    with pytest.raises(StoreFormatError, match="99"):
        backend.loader().get_epochs("neuron_activations")


def test_load_epochs_stacks_lazily_with_epoch_coordinate(backend: Backend) -> None:
    store = backend.store()
    data = {e: _write(store, e) for e in (0, 10, 20, 30)}
    ds = backend.loader().load_epochs("neuron_activations")
    assert ds["activations"].dims == ("epoch", "neuron", "a", "b")
    assert list(ds["epoch"].values) == [0, 10, 20, 30]
    assert ds["activations"].chunks is not None  # dask-backed
    np.testing.assert_array_equal(
        ds["activations"].sel(neuron=7).values, np.stack([d[7] for d in data.values()])
    )
    np.testing.assert_allclose(
        ds["activations"].mean("epoch").values, np.mean(list(data.values()), axis=0), rtol=1e-6
    )
    subset = backend.loader().load_epochs("neuron_activations", [30, 0], chunks=None)
    assert list(subset["epoch"].values) == [30, 0]
    np.testing.assert_array_equal(subset["activations"][:, 2].values, [data[30][2], data[0][2]])
    np.testing.assert_array_equal(
        subset["activations"].isel(epoch=[1], a=[0, 3]).values, data[0][None, :, [0, 3]]
    )


def test_cleanup_removes_what_a_killed_writer_left(backend: Backend) -> None:
    store = backend.store()
    _write(store, 0)
    import zarr

    # What a writer killed mid-epoch leaves: data without a committed epoch node.
    if backend.has_rename:
        leftover = "neuron_activations/.tmp-epoch_00005-deadbeef"
        zarr.create_array(
            store.store, name=f"{store.root_path}/{leftover}/activations", shape=(2,), dtype="f4"
        )[...] = 1
    else:
        from zarr.core.buffer import cpu
        from zarr.core.sync import sync

        leftover = "neuron_activations/epoch_00005"
        key = f"{store.root_path}/{leftover}/activations/c/0"
        sync(store.store.set(key, cpu.Buffer.from_bytes(b"chunk data, no metadata")))
    assert store.get_epochs("neuron_activations") == [0]
    assert store.cleanup(stale_after=0) == [f"{store.root_path}/{leftover}"]
    assert store.cleanup(stale_after=0) == []
    _write(store, 5)
    assert store.get_epochs("neuron_activations") == [0, 5]


def _chunk_keys(store: Any, prefix: str) -> list[str]:
    from zarr.core.sync import sync

    async def keys() -> list[str]:
        return [k async for k in store.list_prefix(prefix) if not k.endswith("zarr.json")]

    return sorted(sync(keys()))


def test_a_flipped_byte_is_detected_not_returned(backend: Backend) -> None:
    from zarr.core.buffer import cpu, default_buffer_prototype
    from zarr.core.sync import sync

    store = backend.store()
    _write(store, 4)
    prefix = f"{store.root_path}/neuron_activations/epoch_00004/activations"
    (key,) = _chunk_keys(store.store, prefix)
    raw = bytearray(sync(store.store.get(key, default_buffer_prototype())).to_bytes())
    raw[len(raw) // 3] ^= 0xFF
    sync(store.store.set(key, cpu.Buffer.from_bytes(bytes(raw))))
    ds = backend.loader().load_epoch("neuron_activations", 4)
    with pytest.raises(CorruptArtifactError, match=r"'neuron_activations', epoch 4"):
        ds["activations"].values  # noqa: B018


def test_a_missing_chunk_is_detected_not_read_as_zeros(backend: Backend) -> None:
    from zarr.core.sync import sync

    store = backend.store()
    _write(store, 4)
    prefix = f"{store.root_path}/neuron_activations/epoch_00004/activations"
    (key,) = _chunk_keys(store.store, prefix)
    sync(store.store.delete(key))
    with pytest.raises(CorruptArtifactError, match="missing"):
        backend.loader().load_epoch("neuron_activations", 4)["activations"].values  # noqa: B018
    with pytest.raises(CorruptArtifactError):
        backend.loader().load_epochs("neuron_activations")["activations"].values  # noqa: B018


def test_root_attributes_record_the_format(backend: Backend) -> None:
    import zarr

    store = backend.store()
    _write(store, 0)
    attrs = zarr.open_group(store.store, path=store.root_path, mode="r").attrs.asdict()
    assert attrs["epochstore_format"] == CREATED_FORMAT == 2
    json.dumps(attrs)


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(arrays, min_size=1, max_size=3))
def test_random_arrays_round_trip(backend: Backend, values: list[np.ndarray]) -> None:
    import uuid

    store = backend.store()
    analyzer = f"a{uuid.uuid4().hex[:8]}"
    outputs = {f"f{i}": v for i, v in enumerate(values)}
    store.write_epoch(analyzer, 1, outputs)
    ds = backend.loader().load_epoch(analyzer, 1)
    for name, value in outputs.items():
        np.testing.assert_array_equal(ds[name].values, value)
        assert ds[name].dtype == value.dtype
