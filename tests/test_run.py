"""The run files: variant.json is read strictly, and a bad one names the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from epochstore.errors import InvalidVariantError
from epochstore.run import VARIANT_FILE, Variant, read_variant, write_variant


def test_variant_round_trip(tmp_path: Path) -> None:
    write_variant(tmp_path, Variant(family="toy", params={"epochs": [0, 1]}))
    variant = read_variant(tmp_path)
    assert (variant.family, dict(variant.params)) == ("toy", {"epochs": [0, 1]})


@pytest.mark.parametrize(
    ("text", "match"),
    [("{nope", "is not valid JSON"), ("[1, 2]", "must hold a JSON object"),
     ('{"family": "toy", "params": 3}', "'params' must be an object")],
)
def test_bad_variant_names_the_file_and_the_fix(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / VARIANT_FILE).write_text(text)
    with pytest.raises(InvalidVariantError, match=match) as info:
        read_variant(tmp_path)
    assert str(tmp_path / VARIANT_FILE) in str(info.value)
    assert "write_variant(" in str(info.value)
    assert isinstance(info.value, ValueError)
