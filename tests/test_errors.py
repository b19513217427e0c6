from __future__ import annotations

import inspect

import pytest

import epochstore
from epochstore import errors


def _error_classes() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.EpochstoreError) and cls is not errors.EpochstoreError
    ]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_is_also_the_builtin_it_means(cls: type[BaseException]) -> None:
    builtin = [
        base
        for base in cls.__mro__
        if base.__module__ == "builtins" and base not in (Exception, BaseException, object)
    ]
    assert builtin, f"{cls.__name__} subclasses no specific built-in exception"
    assert cls.__name__ in epochstore.__all__  # the one public list: epochstore/__init__.pyi
    assert getattr(epochstore, cls.__name__) is cls


def test_key_errors_print_their_message_unquoted() -> None:
    exc = errors.EpochNotFoundError("epoch 3 of analyzer 'x' not found")
    assert str(exc) == "epoch 3 of analyzer 'x' not found"
    with pytest.raises(KeyError):
        raise exc


@pytest.mark.parametrize(
    ("modules", "match", "fix"),
    [(["hidden", "hidden"], "listed twice", "list each module once"),
     (["a.b", "a_b"], "'a.b' and 'a_b' would both be stored as analyzer 'capture_a_b'",
      "capture only one of them")],
)
def test_captures_that_clash_name_the_modules_and_the_fix(
    modules: list[str], match: str, fix: str
) -> None:
    from epochstore.analysis.captures import capture_analyzers
    from epochstore.testing.toy import ToyFamily

    with pytest.raises(ValueError, match=match) as info:
        capture_analyzers(ToyFamily(), {}, modules)
    assert fix in str(info.value)
