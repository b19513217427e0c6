"""Shared fixtures: small analysed runs of the toy family."""

from __future__ import annotations

from pathlib import Path

import pytest

from epochstore import AnalysisPipeline


@pytest.fixture
def analysed_run(tmp_path: Path) -> Path:
    # The toy family needs torch, which the store-only CI job (Python 3.12) does not install.
    pytest.importorskip("torch")
    from epochstore.testing.toy import ToyFamily

    run = tmp_path / "run"
    ToyFamily().train(str(run), {"epochs": [0, 1, 2, 3]})
    AnalysisPipeline(run).run(progress=False)
    return run
