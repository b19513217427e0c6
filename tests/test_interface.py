"""The neutral analyzer base class every analyzer of the package builds on."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from epochstore.analysis.captures import CapturedActivations
from epochstore.analysis.parameters import ParameterStats
from epochstore.families.mlp.analyzers import default_analyzers as mlp_analyzers
from epochstore.families.modadd.analyzers import default_analyzers as modadd_analyzers
from epochstore.interface import Analyzer, AnalyzerBase, FieldSpec, RunContext, check_analyzer
from epochstore.testing.toy import ToyFamily


class _Zero(AnalyzerBase):
    name = "zero"
    version = "1"
    fields = MappingProxyType({"value": FieldSpec(())})

    def compute(self, model: Any, cache: Any, probe: Any, context: Any) -> dict[str, Any]:
        return {"value": np.zeros(())}


def test_a_subclass_is_an_analyzer_with_no_parameters_and_a_plain_repr() -> None:
    zero = _Zero()
    assert isinstance(zero, Analyzer)
    assert check_analyzer(zero) is zero
    assert zero.prepare(None) == {}  # type: ignore[arg-type]
    assert repr(zero) == "_Zero()"


def test_every_analyzer_of_the_package_builds_on_the_one_base() -> None:
    analyzers = [*modadd_analyzers(), *mlp_analyzers(), *ToyFamily().analyzers(),
                 CapturedActivations("h", ("sample",))]
    assert all(isinstance(a, AnalyzerBase) for a in analyzers)
    assert any(isinstance(a, ParameterStats) for a in analyzers)


def test_run_context_names_where_the_run_lives_location_and_run_dir_warns() -> None:

    context = RunContext(location="runs/a", family=ToyFamily(), config={}, epochs=(0,),
                         load_model=None)
    assert context.location == "runs/a"
    with pytest.warns(DeprecationWarning, match=r"RunContext\.location"):
        assert context.run_dir == "runs/a"
