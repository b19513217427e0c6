"""What ``epochstore bench`` compares by default (no imports: the CLI parser reads it)."""

from __future__ import annotations

__all__ = ["DEFAULT_CHUNKINGS", "DEFAULT_CODECS"]

#: Codecs compared by default (``epochstore bench``), as :func:`parse_codec` strings.
DEFAULT_CODECS = (
    "none",
    "lz4-5",
    "lz4-5-shuffle",
    "zstd-1",
    "zstd-3",
    "zstd-1-shuffle",
    "zstd-1-bitshuffle",
)
#: Chunkings compared by default, as :func:`parse_chunking` strings.
DEFAULT_CHUNKINGS = ("default", "1", "whole")
