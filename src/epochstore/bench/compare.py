"""Compare codecs and chunkings on a sample of epochs: size, write speed and warm reads.

:func:`compare` writes the same epochs of one field into a temporary store per (codec,
chunking), plus raw ``.npy`` and per-epoch ``.npz`` files as references, and times the reads
users do most: a whole epoch, one row of one epoch (a neuron, for activations) and one row
across the sampled epochs. :func:`sample_run` takes that sample from a run's own store, for
``epochstore bench RUN``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from epochstore.bench.defaults import DEFAULT_CHUNKINGS, DEFAULT_CODECS
from epochstore.bench.formats import (
    EpochstoreFormat,
    Format,
    NpyPerEpoch,
    NpzAllEpochs,
    NpzPerEpoch,
    codec_label,
    rows_per_chunk,
)
from epochstore.bench.timing import Timing, interleaved, time_calls
from epochstore.errors import EpochstoreError
from epochstore.store.codecs import Codec

__all__ = [
    "DEFAULT_CHUNKINGS",
    "DEFAULT_CODECS",
    "BenchRow",
    "FieldSample",
    "chunking_label",
    "compare",
    "parse_chunking",
    "parse_codec",
    "sample_run",
]



def parse_codec(text: str) -> Codec:
    """Parse a codec name; see :meth:`epochstore.store.codecs.Codec.parse`.

    Examples
    --------
    >>> parse_codec("zstd-1-bitshuffle")
    Codec(cname='zstd', clevel=1, shuffle='bitshuffle', checksum=True)
    >>> parse_codec("none").cname is None
    True
    """
    return Codec.parse(text)


def parse_chunking(text: str) -> int | str | None:
    """Parse ``"default"`` (``None``), ``"whole"`` or a number of rows per chunk."""
    text = text.strip().lower()
    if text == "default":
        return None
    if text == "whole":
        return "whole"
    try:
        rows = int(text)
    except ValueError:
        rows = 0
    if rows < 1:
        raise EpochstoreError(
            f"unknown chunking {text!r}: use 'default', 'whole' or a number of rows per chunk"
        )
    return rows


def chunking_label(chunking: int | str | None, rows: int, total_rows: int) -> str:
    """Describe a chunking, e.g. ``"default (16 rows)"``, ``"whole (1 chunk)"``."""
    if chunking is None:
        return f"default ({rows} row{'s' if rows != 1 else ''})"
    if chunking == "whole" or rows >= total_rows:
        return "whole (1 chunk)"
    return f"{rows} row{'s' if rows != 1 else ''}"


@dataclass
class BenchRow:
    """The figures of one variant (a codec and chunking, or a reference format).

    Times are medians over the repeats, in seconds; ``bytes`` is what the sampled epochs
    occupy (apparent size, metadata included).
    """

    name: str
    label: str
    kind: str
    codec: dict[str, Any] | None
    chunking: str | None
    rows_per_chunk: int | None
    bytes: int
    files: int
    ratio: float
    write_s: float
    write_mbps: float
    full_s: float
    row_s: float
    across_s: float
    timings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass
class FieldSample:
    """Epochs of one field of one analyzer, read from a run."""

    analyzer: str
    field: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    epochs: list[int]
    arrays: dict[int, np.ndarray]
    current_codec: dict[str, Any]
    current_chunks: tuple[int, ...]


def _variants(
    root: Path,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    dims: Sequence[str],
    codecs: Sequence[Codec],
    chunkings: Sequence[int | str | None],
    baselines: bool,
) -> list[tuple[Format, dict[str, Any]]]:
    out: list[tuple[Format, dict[str, Any]]] = []
    if baselines:
        out.append((NpyPerEpoch(root / "npy", "npy", "raw .npy per epoch"), {}))
        out.append((NpzPerEpoch(root / "npz", "npz", ".npz per epoch (savez_compressed)"), {}))
    total_rows = shape[0] if shape else 1
    seen: set[tuple[Codec, int]] = set()
    for codec in codecs:
        for chunking in chunkings if shape else [None]:
            wanted = total_rows if chunking == "whole" else chunking
            rows = rows_per_chunk(shape, dtype, wanted if not isinstance(wanted, str) else None)
            if (codec, rows) in seen:
                continue
            seen.add((codec, rows))
            clabel = chunking_label(chunking, rows, total_rows)
            name = f"es {codec_label(codec)} / {clabel}"
            explicit = None if chunking is None else rows
            fmt = EpochstoreFormat(
                root / f"es_{len(out)}",
                name,
                f"epochstore {codec_label(codec)}, {clabel}",
                codec=codec,
                rows=explicit,
                dims=dims,
            )
            out.append((fmt, {"codec": codec.to_dict(), "chunking": clabel, "rows": rows}))
    return out


def compare(
    arrays: Mapping[int, np.ndarray],
    workdir: Path,
    *,
    codecs: Sequence[Codec] | None = None,
    chunkings: Sequence[int | str | None] | None = None,
    dims: Sequence[str] | None = None,
    rounds: int = 3,
    baselines: bool = True,
    extra: Sequence[Callable[[Path], Format]] = (),
    keep: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Write ``arrays`` (epoch to array of one field) in every variant and time reads.

    Parameters
    ----------
    arrays
        The sampled epochs; all of the same shape and dtype.
    workdir
        A directory for the temporary copies (a new subdirectory, deleted unless ``keep``).
    codecs
        Codecs to compare (default :data:`DEFAULT_CODECS`).
    chunkings
        Rows per chunk: ``None`` (the default layout), ``"whole"`` (one chunk per epoch) or an
        int (default :data:`DEFAULT_CHUNKINGS`).
    dims
        Dimension names of the field.
    rounds
        Interleaved read rounds (every variant once per round).
    baselines
        Also measure raw ``.npy`` and per-epoch ``.npz``.
    extra
        More formats to measure alongside: callables that make a format in a given directory
        (e.g. safetensors, plain unsharded zarr). An :class:`NpzAllEpochs` is written once
        with every epoch (:meth:`NpzAllEpochs.write_all`), its write time split evenly.
    keep
        Keep the written copies.
    progress
        Called with a line of progress text.

    Returns
    -------
    list of BenchRow
        The references first, then one row per (codec, chunking); every epochstore variant's
        reads are checked against the data written.
    """
    if not arrays:
        raise EpochstoreError("no epochs to compare")
    epochs = sorted(arrays)
    first = np.asarray(arrays[epochs[0]])
    shape, dtype = tuple(first.shape), first.dtype
    dims = tuple(dims) if dims is not None else tuple(f"dim_{i}" for i in range(first.ndim))
    codec_list = list(codecs) if codecs is not None else [parse_codec(c) for c in DEFAULT_CODECS]
    chunk_list = (
        list(chunkings)
        if chunkings is not None
        else [parse_chunking(c) for c in DEFAULT_CHUNKINGS]
    )
    say = progress or (lambda _line: None)
    epoch_bytes = first.nbytes
    raw_total = epoch_bytes * len(epochs)
    root = Path(tempfile.mkdtemp(prefix="epochstore-bench-", dir=workdir))
    try:
        variants = _variants(root, shape, dtype, dims, codec_list, chunk_list, baselines)
        variants[2 if baselines else 0 : 2 if baselines else 0] = [
            (make(root / f"extra_{i}"), {}) for i, make in enumerate(extra)
        ]
        writes: dict[str, Timing] = {}
        for fmt, _info in variants:
            samples = []
            if isinstance(fmt, NpzAllEpochs):
                t0 = time.perf_counter()
                fmt.write_all((e, np.asarray(arrays[e])) for e in epochs)
                share = (time.perf_counter() - t0) / len(epochs)
                writes[fmt.name] = Timing((share,) * len(epochs))
                say(f"wrote {fmt.label}: {share * 1e3:.1f} ms/epoch")
                continue
            for e in epochs:
                t0 = time.perf_counter()
                fmt.write(e, np.asarray(arrays[e]))
                samples.append(time.perf_counter() - t0)
            writes[fmt.name] = Timing(tuple(samples))
            say(f"wrote {fmt.label}: {writes[fmt.name].median * 1e3:.1f} ms/epoch")
        mid = epochs[len(epochs) // 2]
        row = shape[0] // 2 if shape else 0
        for fmt, _info in variants:  # check, and warm the page cache and the readers
            if not np.array_equal(fmt.read_epoch(mid), arrays[mid]):
                raise AssertionError(f"{fmt.label}: read differs from what was written")
            if shape and not np.array_equal(fmt.read_row(mid, row), np.asarray(arrays[mid])[row]):
                raise AssertionError(f"{fmt.label}: row read differs from what was written")
        cycle = {"i": 0}

        def next_epoch() -> int:
            cycle["i"] += 1
            return epochs[cycle["i"] % len(epochs)]

        cases: dict[str, Callable[[], Timing]] = {}
        for fmt, _info in variants:
            cases[f"{fmt.name}|full"] = lambda f=fmt: time_calls(  # type: ignore[misc]
                lambda: f.read_epoch(next_epoch()), 3
            )
            if shape:
                cases[f"{fmt.name}|row"] = lambda f=fmt: time_calls(  # type: ignore[misc]
                    lambda: f.read_row(next_epoch(), row), 5
                )
                cases[f"{fmt.name}|across"] = lambda f=fmt: time_calls(  # type: ignore[misc]
                    lambda: f.read_row_across(epochs, row), 2
                )
        say(f"timing reads: {rounds} rounds of {len(cases)} cases")
        timed = interleaved(cases, rounds)
        rows: list[BenchRow] = []
        for fmt, info in variants:
            usage = fmt.disk_usage()
            write = writes[fmt.name]
            nan = Timing(())
            full = timed[f"{fmt.name}|full"]
            one = timed.get(f"{fmt.name}|row", nan)
            across = timed.get(f"{fmt.name}|across", nan)
            rows.append(
                BenchRow(
                    name=fmt.name,
                    label=fmt.label,
                    kind=fmt.kind,
                    codec=info.get("codec"),
                    chunking=info.get("chunking"),
                    rows_per_chunk=info.get("rows"),
                    bytes=usage["bytes"],
                    files=usage["files"],
                    ratio=raw_total / usage["bytes"] if usage["bytes"] else math.nan,
                    write_s=write.median,
                    write_mbps=epoch_bytes / 1e6 / write.median,
                    full_s=full.median,
                    row_s=one.median,
                    across_s=across.median,
                    timings={
                        "write": write.to_dict(),
                        "full": full.to_dict(),
                        "row": one.to_dict(),
                        "across": across.to_dict(),
                    },
                )
            )
        return rows
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def sample_run(
    run: str | Path,
    *,
    epochs: int = 5,
    analyzers: Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[FieldSample]:
    """Read up to ``epochs`` evenly spaced epochs of the largest field of each analyzer.

    Parameters
    ----------
    run
        A run directory or URL (as for :class:`~epochstore.ArtifactLoader`).
    epochs
        Epochs to sample per analyzer (first, last and evenly spaced between).
    analyzers
        Analyzer names (default: every analyzer of the run).
    storage_options
        fsspec options for a URL.

    Returns
    -------
    list of FieldSample
        One per analyzer with at least one epoch.
    """
    from epochstore.store import ArtifactLoader

    loader = ArtifactLoader(run, storage_options=storage_options)
    names = list(analyzers) if analyzers else loader.get_available_analyzers()
    if not names:
        raise EpochstoreError(f"{run} has no analyzers yet: run `epochstore analyze` first")
    samples = []
    for name in names:
        manifest = loader.manifest(name)
        available = loader.get_epochs(name)
        if not available or not manifest.fields:
            continue
        field_name, spec = max(
            manifest.fields.items(),
            key=lambda kv: math.prod(kv[1].shape) * np.dtype(kv[1].dtype).itemsize,
        )
        n = max(1, min(epochs, len(available)))
        last = len(available) - 1
        picks = sorted({available[round(i * last / max(n - 1, 1))] for i in range(n)})
        arrays = {
            e: np.asarray(loader.load_epoch(name, e)[field_name].values) for e in picks
        }
        samples.append(
            FieldSample(
                analyzer=name,
                field=field_name,
                dims=tuple(spec.dims),
                shape=tuple(spec.shape),
                dtype=np.dtype(spec.dtype).name,
                epochs=picks,
                arrays=arrays,
                current_codec=manifest.codec.to_dict(),
                current_chunks=tuple(spec.layout.chunks),
            )
        )
    if not samples:
        raise EpochstoreError(f"no analyzer of {run} has epochs yet: run `epochstore analyze`")
    return samples
