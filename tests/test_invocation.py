"""The suite passes however pytest is started: plain ``pytest``, from another directory.

Tests that send objects to other processes (spawned workers, Dask workers) must take them from
an importable module: a worker cannot import a test module unless the repository's root happens
to be on ``sys.path``, which ``python -m pytest`` adds and the README's plain ``pytest`` does
not. This runs such tests with plain ``pytest`` from a directory outside the repository, with
no ``PYTHONPATH``, as a guard against that regression.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SHIPPING_TESTS = [
    # spawned local worker processes
    "pipeline/test_pipeline.py::test_two_workers_equal_one",
    # Dask worker processes that run a function and unpickle an analyzer made for the tests
    "s3/test_dask_pipeline.py::test_a_worker_killed_mid_task_is_retried_and_the_store_stays_consistent",
]


def _plain_pytest() -> str:
    """The ``pytest`` script of this interpreter's environment (what a user's shell runs)."""
    beside = Path(sys.executable).parent / "pytest"
    found = str(beside) if beside.exists() else shutil.which("pytest")
    assert found, "no `pytest` script beside the interpreter or on PATH"
    return found


@pytest.mark.timeout(900)  # a whole pytest session with a Dask cluster, on 2 shared cores
def test_tests_that_ship_objects_to_workers_pass_under_plain_pytest_elsewhere(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    result = subprocess.run(
        [_plain_pytest(), "-q", "-p", "no:cacheprovider",
         *(str(TESTS / t) for t in SHIPPING_TESTS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=840, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{len(SHIPPING_TESTS)} passed" in result.stdout
    assert "ModuleNotFoundError" not in result.stdout + result.stderr


@pytest.mark.parametrize("test", SHIPPING_TESTS)
def test_the_guarded_tests_exist(test: str) -> None:
    path, _, name = test.partition("::")
    assert f"def {name}(" in (TESTS / path).read_text()
