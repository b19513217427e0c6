"""Everything a run's artifact store holds, read back whole, and a comparison of two of those.

For tests that check a run computed under some stress (a crash, a cluster, concurrency) equals
a clean run: ``assert_same(snapshot(stressed), snapshot(clean))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from epochstore.store import ArtifactLoader

__all__ = ["Snapshot", "assert_same", "snapshot"]

#: ``(analyzer, epoch) -> {field: values}``.
Snapshot = dict[tuple[str, int], dict[str, np.ndarray]]


def snapshot(location: Any, storage_options: Mapping[str, Any] | None = None) -> Snapshot:
    """Return every field of every committed epoch of every analyzer at ``location``."""
    loader = ArtifactLoader(location, storage_options=storage_options)
    return {
        (name, epoch): {str(k): v.values for k, v in loader.load_epoch(name, epoch).load().items()}
        for name in loader.get_available_analyzers()
        for epoch in loader.get_epochs(name)
    }


def assert_same(
    got: Snapshot, expected: Snapshot, *, subset: bool = False, rtol: float = 1e-6
) -> None:
    """Assert ``got`` holds the same epochs and fields as ``expected``, values within ``rtol``.

    With ``subset=True``, ``got`` may lack epochs of ``expected`` (an interrupted run).
    """
    if subset:
        assert set(got) <= set(expected), sorted(set(got) - set(expected))
    else:
        assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))
    for key, fields in got.items():
        assert fields.keys() == expected[key].keys(), key
        for name, values in fields.items():
            np.testing.assert_allclose(values, expected[key][name], rtol=rtol, err_msg=str(key))
