"""A table of hostile inputs: each gets its specific, documented error and leaves no trace."""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# torch: absent in the store-only CI job (Python 3.12), where these tests skip.
pytest.importorskip("torch")

from epochstore import (
    ArtifactStore,
    CheckpointFormatError,
    CheckpointManager,
    EpochstoreError,
    InvalidEpochError,
    InvalidLocationError,
    InvalidNameError,
    UnsupportedArrayError,
)
from epochstore.run import read_variant


class _Boom:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.marker).touch, ())


def _write(run: Path, analyzer: str = "ok", field: str = "x", epoch: Any = 0,
           value: Any = None, **kwargs: Any) -> None:
    value = np.zeros(3, np.float32) if value is None else value
    ArtifactStore(run).write_epoch(analyzer, epoch, {field: value}, **kwargs)


def _ckpt_file(run: Path, content: bytes) -> Callable[[], Any]:
    def go() -> Any:
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run / "checkpoints" / "checkpoint_epoch_00007.safetensors").write_bytes(content)
        return CheckpointManager(checkpoint_dir=run / "checkpoints", read_only=True).load(7)

    return go


def _variant(run: Path, text: str) -> Callable[[], Any]:
    def go() -> Any:
        run.mkdir(parents=True, exist_ok=True)
        (run / "variant.json").write_text(text)
        return read_variant(run)

    return go


_HEADER = json.dumps(
    {"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}
).encode()
_LYING_HEADER = struct.pack("<Q", len(_HEADER)) + _HEADER

CASES: list[tuple[str, Callable[[Path], Callable[[], Any]], type[BaseException], str]] = [
    # names that try path traversal or hidden files
    ("analyzer ../x", lambda r: lambda: _write(r, analyzer="../x"), InvalidNameError, "a-z"),
    ("analyzer ..", lambda r: lambda: _write(r, analyzer=".."), InvalidNameError, "a-z"),
    ("analyzer .hidden", lambda r: lambda: _write(r, analyzer=".hidden"), InvalidNameError, ""),
    ("analyzer a/b", lambda r: lambda: _write(r, analyzer="a/b"), InvalidNameError, ""),
    ("analyzer /abs", lambda r: lambda: _write(r, analyzer="/etc"), InvalidNameError, ""),
    ("analyzer zarr.json", lambda r: lambda: _write(r, analyzer="zarr.json"), InvalidNameError, ""),
    ("field ../../x", lambda r: lambda: _write(r, field="../../x"), InvalidNameError, "field"),
    ("field c", lambda r: lambda: _write(r, field="C"), InvalidNameError, "field"),
    ("dim name ../d", lambda r: lambda: _write(r, dims={"x": ("../d",)}), InvalidNameError, ""),
    # absurd epochs
    ("epoch -1", lambda r: lambda: _write(r, epoch=-1), InvalidEpochError, r"0\.\.99999"),
    ("epoch 100000", lambda r: lambda: _write(r, epoch=100_000), InvalidEpochError, ""),
    ("epoch 2**63", lambda r: lambda: _write(r, epoch=2**63), InvalidEpochError, ""),
    ("epoch nan", lambda r: lambda: _write(r, epoch=float("nan")), InvalidEpochError, ""),
    ("epoch '7'", lambda r: lambda: _write(r, epoch="7"), InvalidEpochError, "integer"),
    # huge or negative shapes, object dtypes
    ("huge field", lambda r: lambda: _write(
        r, value=np.broadcast_to(np.float32(0), (2**20, 2**20))), UnsupportedArrayError, "GiB"),
    ("negative chunks", lambda r: lambda: _write(r, chunks={"x": (-1,)}), ValueError, "positive"),
    ("object dtype", lambda r: lambda: _write(r, value=np.array([None, 1], dtype=object)),
     UnsupportedArrayError, "dtype"),
    ("string dtype", lambda r: lambda: _write(r, value=np.array(["a"])), UnsupportedArrayError,
     "dtype"),
    ("ragged list", lambda r: lambda: _write(r, value=[[1], [1, 2]]), UnsupportedArrayError, ""),
    # a store location pointing outside the run
    ("path ../elsewhere", lambda r: lambda: ArtifactStore(r, path="../elsewhere"),
     InvalidLocationError, r"\.\."),
    ("path /abs", lambda r: lambda: ArtifactStore(r, path="/tmp/x"), InvalidLocationError, ""),
    ("path .hidden", lambda r: lambda: ArtifactStore(r, path=".cache"), InvalidLocationError, ""),
    # checkpoints: a pickle, a zip (torch.save format), a header claiming huge sizes
    ("checkpoint is a pickle", lambda r: _ckpt_file(
        r, pickle.dumps(_Boom(str(r / "EXECUTED")))), CheckpointFormatError, "pickle"),
    ("header claims 2**60 bytes", lambda r: _ckpt_file(r, struct.pack("<Q", 2**60) + b"{}"),
     CheckpointFormatError, "safetensors"),
    ("header lies about tensor sizes", lambda r: _ckpt_file(r, _LYING_HEADER),
     CheckpointFormatError, "safetensors"),
    # variant.json with unexpected types
    ("variant not JSON", lambda r: _variant(r, "{nope"), EpochstoreError, "JSON"),
    ("variant is a list", lambda r: _variant(r, "[1, 2]"), EpochstoreError, "object"),
    ("variant family 3", lambda r: _variant(r, '{"family": 3}'), InvalidNameError, "family"),
    ("variant family ../x", lambda r: _variant(r, '{"family": "../x"}'), InvalidNameError, ""),
    ("variant params list", lambda r: _variant(r, '{"family": "toy", "params": [1]}'),
     EpochstoreError, "params"),
]


@pytest.mark.parametrize(("make", "error", "match"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_input(tmp_path: Path, make: Callable[[Path], Callable[[], Any]],
                       error: type[BaseException], match: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    before = set(tmp_path.rglob("*"))
    action = make(run)
    setup = set(tmp_path.rglob("*"))  # files the case itself planted
    with pytest.raises(error, match=match or None):
        action()
    after = set(tmp_path.rglob("*"))
    created = after - setup - before
    # No trace: nothing written (checkpoint/variant cases plant their own hostile file first).
    assert not [p for p in created if p.name not in ("checkpoints", "variant.json") and
                "checkpoint_epoch" not in p.name], sorted(map(str, created))
    assert not (run / "EXECUTED").exists(), "a pickle was executed"
    assert not (tmp_path / "elsewhere").exists()
