"""Codecs and chunking: the one place that decides how an array is laid out and compressed.

Defaults (see ``docs/format.md`` and ``benchmarks/README.md`` for the measurements behind them):

- Blosc with LZ4, level 5, no shuffle. ReLU activations are ~60% exact zeros; on them Blosc
  without shuffle compressed better than with byte- or bit-shuffle, and LZ4 decodes at GB/s.
- A CRC32C checksum after compression on every chunk, so a flipped byte is an error on read,
  never a wrong number.
- Chunks along the leading axis only, of at most :data:`TARGET_CHUNK_BYTES` (16 neurons of a
  ``113 x 113`` float32 grid, ~0.8 MB), so one neuron is one small read and a whole epoch is a
  few dozen chunks, not hundreds (zarr's per-chunk overhead dominated 1-neuron chunks).
- When an epoch's field has more than one chunk, all of them live in a single *shard* (one file
  or object per field per epoch) that keeps an index, so a run of 95 epochs is a few hundred
  files, not tens of thousands, and a one-neuron read is still one small ranged read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "ARCHIVAL_CODEC",
    "DEFAULT_CODEC",
    "TARGET_CHUNK_BYTES",
    "Codec",
    "Layout",
    "default_layout",
]

_CODEC_RE = re.compile(r"^(lz4|lz4hc|zstd|zlib|blosclz)-(\d)(?:-(noshuffle|shuffle|bitshuffle))?$")

ShuffleName = Literal["noshuffle", "shuffle", "bitshuffle"]
CnameName = Literal["lz4", "lz4hc", "zstd", "zlib", "blosclz"]

#: Target uncompressed size of one chunk along the leading axis (rows = this // row bytes).
#: 800 KiB gives 16 neurons of a 113 x 113 float32 grid (817,216 bytes). Measured in
#: ``benchmarks/bench_store.py``: against 1-neuron chunks (64 KiB) it reads a full epoch 3-5x
#: faster (zarr pays ~0.15-0.25 ms of Python per chunk), writes ~2x faster and compresses a
#: little better, with the same one-neuron read; larger chunks (32+ neurons) slow the dask
#: one-neuron-across-epochs read, which decodes whole chunks.
TARGET_CHUNK_BYTES = 800 * 1024


@dataclass(frozen=True)
class Codec:
    """How each chunk is compressed and checked.

    Parameters
    ----------
    cname
        Blosc compressor, or ``None`` for no compression.
    clevel
        Compression level (0-9).
    shuffle
        Blosc shuffle filter.
    checksum
        Append a CRC32C checksum to every chunk (strongly recommended).
    """

    cname: CnameName | None = "lz4"
    clevel: int = 5
    shuffle: ShuffleName = "noshuffle"
    checksum: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.clevel <= 9:
            raise ValueError(f"Blosc clevel must be 0..9, got {self.clevel}")

    def zarr_compressors(self) -> list[Any]:
        """Return the zarr v3 bytes-to-bytes codecs for this choice."""
        from zarr.codecs import BloscCodec, Crc32cCodec

        codecs: list[Any] = []
        if self.cname is not None:
            codecs.append(BloscCodec(cname=self.cname, clevel=self.clevel, shuffle=self.shuffle))
        if self.checksum:
            codecs.append(Crc32cCodec())
        return codecs

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description (stored in the analyzer manifest)."""
        return {
            "cname": self.cname,
            "clevel": self.clevel,
            "shuffle": self.shuffle,
            "checksum": self.checksum,
        }

    @classmethod
    def parse(cls, text: str) -> Codec:
        """Parse ``"default"``, ``"archival"``, ``"none"`` or ``"<cname>-<level>[-<shuffle>]"``.

        Raises
        ------
        InvalidCodecError
            For any other text (the message lists the accepted forms).

        Examples
        --------
        >>> Codec.parse("zstd-1-bitshuffle")
        Codec(cname='zstd', clevel=1, shuffle='bitshuffle', checksum=True)
        >>> Codec.parse("none").cname is None
        True
        """
        from epochstore.errors import InvalidCodecError

        text = text.strip().lower()
        named = {"default": DEFAULT_CODEC, "archival": ARCHIVAL_CODEC, "none": Codec(cname=None)}
        if text in named:
            return named[text]
        match = _CODEC_RE.match(text)
        if match is None:
            raise InvalidCodecError(
                f"unknown codec {text!r}: use 'default' (lz4-5), 'archival' (zstd-1), 'none' "
                "or '<cname>-<level>[-<shuffle>]', e.g. 'lz4-5', 'zstd-1-bitshuffle' "
                "(cname: lz4, lz4hc, zstd, zlib, blosclz)"
            )
        cname, level, shuffle = match.groups()
        return cls(cname=cname, clevel=int(level), shuffle=shuffle or "noshuffle")  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Codec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            cname=data.get("cname"),
            clevel=int(data.get("clevel", 5)),
            shuffle=data.get("shuffle", "noshuffle"),
            checksum=bool(data.get("checksum", True)),
        )


#: The default: LZ4 level 5, no shuffle. Chosen in ``benchmarks/README.md`` (issue 6): it
#: reads a whole epoch ~2x faster than zstd and writes ~2x faster, for ~20% more bytes.
DEFAULT_CODEC = Codec()
#: For runs where disk matters more than read speed: Zstandard level 1, no shuffle. As small
#: as ``np.savez_compressed`` on ReLU activations, writes ~5x faster than it, reads slower
#: than LZ4 (measured in ``benchmarks/README.md``).
ARCHIVAL_CODEC = Codec(cname="zstd", clevel=1)


@dataclass(frozen=True)
class Layout:
    """Chunk layout of one field in one epoch.

    Attributes
    ----------
    chunks
        The chunk shape: the unit of compression, checksum and reading.
    shards
        The shard shape (chunks stored together in one object), or ``None`` for unsharded.
    """

    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description."""
        return {
            "chunks": list(self.chunks),
            "shards": None if self.shards is None else list(self.shards),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        """Inverse of :meth:`to_dict`."""
        shards = data.get("shards")
        return cls(
            chunks=tuple(int(c) for c in data["chunks"]),
            shards=None if shards is None else tuple(int(s) for s in shards),
        )


def default_layout(
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    chunks: tuple[int, ...] | None = None,
) -> Layout:
    """Choose the layout of an array of ``shape`` and ``dtype``.

    Parameters
    ----------
    shape, dtype
        The array of one epoch.
    chunks
        An explicit chunk shape; ``None`` chunks along the leading axis to about
        :data:`TARGET_CHUNK_BYTES`.

    Returns
    -------
    Layout
        Chunks, and one shard covering the whole array when there is more than one chunk.
    """
    if chunks is None:
        if len(shape) == 0:
            chunks = ()
        else:
            row_bytes = dtype.itemsize * math.prod(shape[1:])
            rows = max(1, TARGET_CHUNK_BYTES // max(row_bytes, 1))
            chunks = (max(1, min(shape[0], rows)), *(max(1, s) for s in shape[1:]))
    else:
        if len(chunks) != len(shape):
            raise ValueError(
                f"chunks {chunks} has {len(chunks)} dimensions but the array has {len(shape)}"
            )
        if any(int(c) < 1 for c in chunks):
            raise ValueError(f"chunks {chunks} must be positive integers")
        chunks = tuple(max(1, min(int(c), max(s, 1))) for c, s in zip(chunks, shape, strict=True))
    n_chunks = math.prod(math.ceil(s / c) for s, c in zip(shape, chunks, strict=True))
    if n_chunks <= 1:
        return Layout(chunks=chunks)
    # One shard holds the whole epoch's field; its shape must be a multiple of the chunks.
    shards = tuple(math.ceil(s / c) * c for s, c in zip(shape, chunks, strict=True))
    return Layout(chunks=chunks, shards=shards)
