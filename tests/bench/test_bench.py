"""``epochstore bench`` and the benchmark library on a tiny store (2 epochs, seconds)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from epochstore import ArtifactStore
from epochstore.bench import BenchRow, compare, parse_chunking, parse_codec, recommend
from epochstore.bench.formats import (
    EpochstoreFormat,
    Format,
    NpyPerEpoch,
    NpzAllEpochs,
    NpzPerEpoch,
    SafetensorsPerEpoch,
    ZarrPerEpoch,
    format_from_spec,
)
from epochstore.bench.recommend import format_table
from epochstore.bench.timing import (
    Timing,
    evict,
    interleaved,
    peak_rss_growth,
    resident_fraction,
    time_calls,
)
from epochstore.cli import main
from epochstore.errors import EpochstoreError
from epochstore.store.codecs import Codec

SHAPE = (32, 9, 9)
DIMS = ("neuron", "a", "b")


def relu(seed: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal(shape, dtype=np.float32), 0)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run with a large-ish field, a small field and a scalar analyzer, 2 epochs each."""
    path = tmp_path / "run"
    store = ArtifactStore(path)
    for epoch in (0, 10):
        store.write_epoch(
            "neuron_activations",
            epoch,
            {"activations": relu(epoch, (64, 23, 23)), "norms": np.ones(64, np.float32)},
            dims={"activations": DIMS, "norms": ("neuron",)},
        )
        store.write_epoch("loss", epoch, {"value": np.float32(epoch)})
    return path


# --- formats ----------------------------------------------------------------------------------


def all_formats(root: Path) -> list[Format]:
    lz4 = Codec()
    return [
        NpyPerEpoch(root / "npy", "npy", "npy"),
        NpzPerEpoch(root / "npz", "npz", "npz"),
        NpzAllEpochs(root / "npz_all", "npz_all", "npz all"),
        SafetensorsPerEpoch(root / "st", "st", "safetensors"),
        EpochstoreFormat(root / "es", "es", "es default", codec=lz4, dims=DIMS),
        EpochstoreFormat(
            root / "es4", "es4", "es zstd k4", codec=parse_codec("zstd-1"), rows=4, dims=DIMS
        ),
        ZarrPerEpoch(root / "zu", "zu", "zarr unsharded", codec=lz4, rows=4, sharded=False),
        ZarrPerEpoch(root / "zs", "zs", "zarr sharded", codec=lz4, rows=4, sharded=True),
    ]


@pytest.mark.parametrize("index", range(8))
def test_every_format_round_trips(tmp_path: Path, index: int) -> None:
    fmt = all_formats(tmp_path)[index]
    data = {e: relu(e) for e in (0, 3, 7)}
    for epoch, array in data.items():
        fmt.write(epoch, array)
    for reopened in (fmt, format_from_spec(json.loads(json.dumps(fmt.spec())))):
        assert np.array_equal(reopened.read_epoch(3), data[3])
        assert np.array_equal(reopened.read_row(7, 5), data[7][5])
        across = reopened.read_row_across([0, 3, 7], 2)
        assert np.array_equal(across, np.stack([data[e][2] for e in (0, 3, 7)]))
        mean = reopened.mean_over_epochs([0, 3, 7])
        assert np.allclose(mean, np.mean([data[e] for e in (0, 3, 7)], axis=0), atol=1e-6)
        assert reopened.epoch_files(3)
    usage = fmt.disk_usage()
    assert usage["bytes"] > 0
    assert usage["files"] >= 1


def test_npz_all_epochs_append_rewrites_one_file(tmp_path: Path) -> None:
    fmt = NpzAllEpochs(tmp_path, "npz_all", "npz all")
    fmt.write_all((e, relu(e)) for e in (0, 1))
    fmt.append(2, relu(2))
    fmt.append(1, relu(11))  # replacing an epoch keeps the others
    assert [p.name for p in fmt.files()] == ["all_epochs.npz"]
    with np.load(fmt.path) as z:
        assert sorted(z.files) == ["epoch_00000", "epoch_00001", "epoch_00002"]
    assert np.array_equal(fmt.read_epoch(1), relu(11))
    assert np.array_equal(fmt.read_epoch(2), relu(2))


def test_epochstore_reductions_agree(tmp_path: Path) -> None:
    fmt = EpochstoreFormat(tmp_path, "es", "es", codec=Codec(), rows=8, dims=DIMS)
    for e in range(3):
        fmt.write(e, relu(e))
    loop = fmt.mean_over_epochs([0, 1, 2], dask=False)
    for chunks in ("zarr", {"epoch": 1}):
        assert np.allclose(fmt.mean_over_epochs([0, 1, 2], chunks=chunks), loop, atol=1e-6)
    assert np.array_equal(
        fmt.read_row_across([0, 2], 3, chunks="zarr"), fmt.read_row_across([0, 2], 3)
    )


# --- parsing ----------------------------------------------------------------------------------


def test_parse_codec_and_chunking() -> None:
    assert parse_codec("zstd-3-shuffle") == Codec(cname="zstd", clevel=3, shuffle="shuffle")
    assert parse_codec("LZ4-5") == Codec()
    assert parse_codec("none").cname is None
    assert parse_chunking("default") is None
    assert parse_chunking("whole") == "whole"
    assert parse_chunking("16") == 16
    with pytest.raises(EpochstoreError, match="unknown codec"):
        parse_codec("gzip-9")
    with pytest.raises(EpochstoreError, match="unknown chunking"):
        parse_chunking("0")


# --- compare and recommend --------------------------------------------------------------------


def test_compare_rows_and_recommendation(tmp_path: Path) -> None:
    arrays = {0: relu(0), 5: relu(5)}
    rows = compare(
        arrays,
        tmp_path,
        codecs=[Codec(cname=None), Codec(), parse_codec("zstd-1")],
        chunkings=[None, 1, "whole"],
        dims=DIMS,
        rounds=1,
    )
    names = [r.name for r in rows]
    assert names[:2] == ["npy", "npz"]
    es = [r for r in rows if r.kind == "epochstore"]
    # 3 codecs x 3 chunkings; the default layout of a 10 KB field is one chunk, so "default"
    # and "whole" are the same variant and measured once
    assert {(r.codec["cname"] if r.codec else None, r.rows_per_chunk) for r in es} == {
        (c, k) for c in (None, "lz4", "zstd") for k in (1, 32)
    }
    for r in rows:
        assert r.bytes > 0
        assert r.full_s > 0
        assert r.row_s > 0
        assert r.across_s > 0
        assert r.write_mbps > 0
    assert list(tmp_path.iterdir()) == []  # temporary copies removed
    rec = recommend(rows)
    assert rec.row.kind == "epochstore"
    assert rec.row.name in rec.candidates or not rec.candidates
    table = format_table(rows, rec)
    assert len(table.splitlines()) == 2 + len(rows)
    assert "raw .npy per epoch" in table
    assert "* " + rec.row.label in table
    assert "ArtifactStore(run, codec=Codec(" in rec.code("activations", SHAPE)


def row(
    name: str, bytes_: int, full_ms: float, row_ms: float, kind: str = "epochstore"
) -> BenchRow:
    return BenchRow(
        name=name,
        label=name,
        kind=kind,
        codec={"cname": "zstd", "clevel": 1, "shuffle": "noshuffle", "checksum": True},
        chunking="4 rows",
        rows_per_chunk=4,
        bytes=bytes_,
        files=1,
        ratio=1000 / bytes_,
        write_s=0.1,
        write_mbps=10.0,
        full_s=full_ms / 1e3,
        row_s=row_ms / 1e3,
        across_s=math.nan,
    )


def test_recommend_rule() -> None:
    rows = [
        row("npz", 400, 100.0, 100.0, kind="npz"),
        row("none-whole", 1000, 10.0, 8.0),
        row("fast-big", 700, 20.0, 2.0),
        row("small", 420, 45.0, 3.5),
        row("smallest-but-slow", 380, 60.0, 3.0),  # not 2x faster than .npz
        row("smallest-bad-row", 390, 30.0, 30.0),  # one-row read over 2x the fastest
    ]
    rec = recommend(rows)
    assert rec.row.name == "small"
    assert set(rec.candidates) == {"fast-big", "small"}  # none-whole: one-row read 4x
    assert "2x faster than per-epoch .npz" in rec.reason
    # sizes within 2% tie: the faster whole-epoch read wins
    rec = recommend([*rows, row("small-faster", 425, 40.0, 3.0)])
    assert rec.row.name == "small-faster"
    # without a .npz row: within 1.5x of the fastest whole-epoch read
    rec = recommend([r for r in rows if r.kind != "npz"])
    assert rec.row.name == "none-whole"
    # nothing passes: the fastest whole-epoch read
    rec = recommend([rows[0], row("a", 100, 80.0, 1.0), row("b", 200, 70.0, 9.0)])
    assert rec.row.name == "b"
    assert rec.candidates == ()


# --- the command ------------------------------------------------------------------------------


def test_cli_bench(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "bench.json"
    work = tmp_path / "work"
    status = main(
        [
            "bench",
            str(run),
            "--epochs",
            "2",
            "--rounds",
            "1",
            "--codecs",
            "none,lz4-5,zstd-1",
            "--chunks",
            "default,1",
            "--min-bytes",
            "1024",
            "--workdir",
            str(work),
            "--json",
            str(out_json),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "neuron_activations.activations  float32 (neuron=64, a=23, b=23)  epochs [0, 10]" in out
    assert "loss: skipped" in out
    for label in (
        "raw .npy per epoch",
        ".npz per epoch (savez_compressed)",
        "epochstore none, default (64 rows)",
        "epochstore lz4-5 noshuffle, 1 row",
        "epochstore zstd-1 noshuffle, default (64 rows)",
    ):
        assert label in out
    assert "= epochstore lz4-5 noshuffle, default (64 rows)" in out or "* epochstore lz4-5" in out
    assert "recommended (*): epochstore" in out
    report = json.loads(out_json.read_text())
    assert [r["analyzer"] for r in report] == ["neuron_activations"]
    assert len(report[0]["rows"]) == 2 + 3 * 2
    assert list(work.iterdir()) == []


def test_cli_bench_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ArtifactStore(tmp_path / "empty").create_analyzer("nothing")
    assert main(["bench", str(tmp_path / "empty")]) == 2
    assert "has epochs yet" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "empty"), "--codecs", "brotli"]) == 2
    assert "unknown codec" in capsys.readouterr().err


# --- timing -----------------------------------------------------------------------------------


def test_timing_helpers(tmp_path: Path) -> None:
    calls: list[str] = []
    t = time_calls(lambda: calls.append("x"), 3, warmup=1, before=lambda: calls.append("b"))
    assert len(t.samples) == 3
    assert calls == ["x", "b", "x", "b", "x", "b", "x"]
    assert t.min <= t.median
    merged = interleaved({"a": lambda: Timing((1.0,)), "b": lambda: Timing((2.0, 3.0))}, 2)
    assert merged["a"].samples == (1.0, 1.0)
    assert merged["b"].median == 2.5
    assert math.isnan(Timing(()).median)
    seconds, growth = peak_rss_growth(lambda: np.ones(8_000_000).sum())
    assert seconds > 0
    if sys.platform.startswith("linux"):
        assert growth > 32e6  # the 64 MB array
        path = tmp_path / "f.bin"
        path.write_bytes(b"x" * 1_000_000)
        path.read_bytes()
        evict([path])
        assert resident_fraction([path]) < 0.5
