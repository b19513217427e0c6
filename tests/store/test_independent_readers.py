"""An epoch written by epochstore opens with plain zarr and plain xarray, without epochstore."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from epochstore import ArtifactStore


def _write(tmp_path: Path) -> np.ndarray:
    data = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    ArtifactStore(tmp_path).write_epoch(
        "neuron_activations",
        42,
        {"activations": data},
        dims={"activations": ("neuron", "a", "b")},
        chunks={"activations": (1, 6, 6)},
    )
    return data


def test_plain_zarr_and_xarray_read_an_epoch(tmp_path: Path) -> None:
    data = _write(tmp_path)
    array = zarr.open_array(
        tmp_path / "artifacts", path="neuron_activations/epoch_00042/activations", mode="r"
    )
    np.testing.assert_array_equal(array[...], data)
    assert array.metadata.dimension_names == ("neuron", "a", "b")
    ds = xr.open_zarr(
        tmp_path / "artifacts", group="neuron_activations/epoch_00042", consolidated=False
    )
    np.testing.assert_array_equal(ds["activations"].values, data)
    assert ds["activations"].dims == ("neuron", "a", "b")


def test_a_process_without_epochstore_reads_it(tmp_path: Path) -> None:
    data = _write(tmp_path)
    code = (
        "import sys, xarray as xr\n"
        "sys.modules['epochstore'] = None  # importing epochstore would fail\n"
        f"ds = xr.open_zarr({str(tmp_path / 'artifacts')!r}, "
        "group='neuron_activations/epoch_00042', consolidated=False)\n"
        "print(float(ds['activations'].sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == float(data.sum())


def test_xarray_backend_entry_point(tmp_path: Path) -> None:
    data = _write(tmp_path)
    ds = xr.open_dataset(tmp_path, engine="epochstore", group="neuron_activations")
    assert ds["activations"].dims == ("epoch", "neuron", "a", "b")
    np.testing.assert_array_equal(ds["activations"].sel(epoch=42).values, data)
    one = xr.open_dataset(tmp_path, engine="epochstore", group="neuron_activations", epoch=42)
    np.testing.assert_array_equal(one["activations"].values, data)
    chunked = xr.open_dataset(
        tmp_path, engine="epochstore", group="neuron_activations", chunks={}
    )
    assert chunked["activations"].chunks is not None
