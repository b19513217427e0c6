from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epochstore.errors import InvalidEpochError, InvalidNameError
from epochstore.naming import (
    MAX_EPOCH,
    checkpoint_name,
    epoch_name,
    is_hidden,
    parse_checkpoint_name,
    parse_epoch_name,
    tmp_epoch_name,
    validate_epoch,
    validate_name,
)

epochs = st.integers(min_value=0, max_value=MAX_EPOCH)


@given(epochs)
def test_epoch_name_round_trips(epoch: int) -> None:
    name = epoch_name(epoch)
    assert len(name) == len("epoch_") + 5
    assert parse_epoch_name(name) == epoch


@given(epochs)
def test_checkpoint_name_round_trips(epoch: int) -> None:
    assert parse_checkpoint_name(checkpoint_name(epoch)) == epoch


@given(epochs, st.text(alphabet="0123456789abcdef", min_size=1, max_size=32))
def test_temporary_names_are_hidden_and_never_epochs(epoch: int, token: str) -> None:
    name = tmp_epoch_name(epoch, token)
    assert is_hidden(name)
    assert parse_epoch_name(name) is None


@given(st.from_regex(r"[a-z][a-z0-9_]{0,40}", fullmatch=True))
def test_valid_names_pass(name: str) -> None:
    assert validate_name(name) == name


@given(st.text(max_size=20).filter(lambda s: not s[:1].isascii() or not s[:1].islower()))
def test_names_not_starting_with_a_lowercase_letter_fail(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name)


@pytest.mark.parametrize(
    "name", ["../x", "A", ".hidden", "a/b", "", "a b", "a-b", "ä", "x" * 129, "a\x00", "zarr.json"]
)
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidNameError, match=r"\[a-z\]\[a-z0-9_\]\*"):
        validate_name(name, "analyzer name")


@pytest.mark.parametrize("value", [None, 3, b"abc"])
def test_non_string_names_are_refused(value: object) -> None:
    with pytest.raises(InvalidNameError, match="must be a str"):
        validate_name(value)


@pytest.mark.parametrize("epoch", [-1, MAX_EPOCH + 1, 10**12])
def test_out_of_range_epochs_are_refused(epoch: int) -> None:
    with pytest.raises(InvalidEpochError, match=r"0\.\.99999"):
        validate_epoch(epoch)


@pytest.mark.parametrize("epoch", [1.0, "3", True, None])
def test_non_integer_epochs_are_refused(epoch: object) -> None:
    with pytest.raises(InvalidEpochError, match="integer"):
        validate_epoch(epoch)


def test_numpy_integers_are_epochs() -> None:
    import numpy as np

    assert validate_epoch(np.int64(7)) == 7
    assert epoch_name(np.int32(7)) == "epoch_00007"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["epoch_1", "epoch_000001", "epoch_0000a", "Epoch_00001", "epoch_00001/", "checkpoint_epoch_1"],
)
def test_malformed_names_do_not_parse(name: str) -> None:
    assert parse_epoch_name(name) is None
    assert parse_checkpoint_name(name) is None
