"""Several processes analysing one run at once, with readers polling: nothing lost or mixed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from epochstore import AnalysisPipeline, ArtifactLoader, EpochChangedError

# torch: absent in the store-only CI job (Python 3.12), where these tests skip.
pytest.importorskip("torch")
from epochstore.testing.snapshots import snapshot
from epochstore.testing.toy import ToyFamily

EPOCHS = list(range(24))

ANALYZE = (
    "import sys\n"
    "from epochstore import AnalysisPipeline\n"
    "from epochstore.testing import toy; toy.register()\n"
    "run, names, epochs = sys.argv[1], sys.argv[2], sys.argv[3]\n"
    "AnalysisPipeline(run, analyzers=names.split(',') if names else None).run(\n"
    "    progress=False, epochs=[int(e) for e in epochs.split(',')] if epochs else None)\n"
)


def test_concurrent_analyzers_and_readers(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    ToyFamily().train(str(clean), {"epochs": EPOCHS})
    AnalysisPipeline(clean).run(progress=False)
    expected = snapshot(clean)

    run = tmp_path / "shared"
    ToyFamily().train(str(run), {"epochs": EPOCHS})
    jobs = [
        ("", ""),  # every analyzer, every epoch
        ("", ",".join(map(str, EPOCHS[::-1]))),  # the same, overlapping, in reverse order
        ("output_norm,weight_drift", ",".join(map(str, EPOCHS[5:15]))),  # some, overlapping
        ("hidden_activations", ""),
    ]
    procs = [
        subprocess.Popen([sys.executable, "-c", ANALYZE, str(run), names, epochs])
        for names, epochs in jobs
    ]
    polls = 0
    while any(p.poll() is None for p in procs):
        loader = ArtifactLoader(run)
        for name in loader.get_available_analyzers():
            for epoch in loader.get_epochs(name):
                try:
                    ds = loader.load_epoch(name, epoch).load()
                except EpochChangedError:  # pragma: no cover - only with overwrites
                    continue
                for field, values in ds.items():
                    np.testing.assert_allclose(
                        values.values, expected[(name, epoch)][field], rtol=1e-6
                    )
                polls += 1
        time.sleep(0.01)
    assert [p.wait() for p in procs] == [0, 0, 0, 0], "a concurrent analyzer crashed"
    assert polls > 0
    got = snapshot(run)
    assert got.keys() == expected.keys()
    for key, fields in expected.items():
        for field, values in fields.items():
            np.testing.assert_allclose(got[key][field], values, rtol=1e-6)
    assert not list(run.rglob(".tmp-*"))
