"""Codec names: one parser for the store, the pipeline, the CLI and `epochstore bench`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from epochstore import ArtifactLoader, ArtifactStore, Codec
from epochstore.errors import InvalidCodecError
from epochstore.store.codecs import ARCHIVAL_CODEC, DEFAULT_CODEC


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("default", DEFAULT_CODEC),
        ("archival", ARCHIVAL_CODEC),
        ("none", Codec(cname=None)),
        ("LZ4-5", Codec()),
        ("zstd-3-shuffle", Codec(cname="zstd", clevel=3, shuffle="shuffle")),
    ],
)
def test_codec_names(text: str, codec: Codec) -> None:
    assert Codec.parse(text) == codec


@pytest.mark.parametrize("text", ["gzip-9", "lz4", "zstd-10", "zstd-1-sorted", ""])
def test_unknown_codec_names_say_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidCodecError, match="'archival'"):
        Codec.parse(text)


def test_store_takes_a_codec_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidCodecError):
        ArtifactStore(tmp_path, codec="brotli-1")
    assert not (tmp_path / "artifacts").exists()  # refused before anything was written
    store = ArtifactStore(tmp_path, codec="archival")
    data = np.maximum(np.random.default_rng(0).standard_normal((32, 9, 9)), 0).astype("f4")
    store.write_epoch("acts", 0, {"x": data}, dims={"x": ("n", "a", "b")})
    loader = ArtifactLoader(tmp_path)
    assert loader.manifest("acts").codec == ARCHIVAL_CODEC
    np.testing.assert_array_equal(loader.load_epoch("acts", 0)["x"].values, data)
    np.testing.assert_array_equal(loader.load_epochs("acts")["x"].values[0], data)
