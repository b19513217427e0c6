"""A family or analyzer defined in ``__main__`` (a notebook): fine in-process, refused clearly
where other processes would have to import it (``workers > 1``, Dask)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

#: Run as ``python -`` (its classes live in ``__main__``, as a notebook's do).
NOTEBOOK = textwrap.dedent(
    """
    import json, sys
    from epochstore import AnalysisPipeline, ArtifactLoader, EpochstoreError
    from epochstore.plugins import register_family
    from epochstore.testing import toy
    from epochstore.testing.toy import OutputNorm, ToyFamily

    toy.register()

    class NotebookFamily(ToyFamily):
        name = "notebook_toy"

    class NotebookNorm(OutputNorm):
        pass

    register_family("notebook_toy", NotebookFamily)
    run = sys.argv[1]
    NotebookFamily().train(run, {"epochs": [0, 1, 2]})
    result = {}
    report = AnalysisPipeline(run).run(workers=1, progress=False)
    result["workers1"] = sorted(ArtifactLoader(run).get_available_analyzers())
    result["ok"] = report.ok

    def refusal(run, analyzers=None, **kwargs):
        try:
            AnalysisPipeline(run, analyzers=analyzers).run(progress=False, **kwargs)
        except EpochstoreError as exc:
            return str(exc)
        return None

    result["workers2"] = refusal(run, workers=2)
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        result["dask"] = refusal(run, client=client)
    toy_run = sys.argv[2]
    ToyFamily().train(toy_run, {"epochs": [0, 1]})
    result["analyzer"] = refusal(toy_run, analyzers=[NotebookNorm(name="notebook_norm")], workers=2)
    result["toy_artifacts"] = ArtifactLoader(toy_run).get_available_analyzers()
    print(json.dumps(result))
    """
)


def test_a_main_family_runs_in_process_and_is_refused_for_workers_and_dask(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-", str(tmp_path / "nb"), str(tmp_path / "toy")],
        input=NOTEBOOK, capture_output=True, text=True, check=True, timeout=240,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"]
    assert result["workers1"] == ["hidden_activations", "output_norm", "weight_drift"]
    for key in ("workers2", "dask"):
        message = result[key]
        assert message is not None, key
        assert "family 'notebook_toy' (NotebookFamily) is defined in '__main__'" in message
        assert "importable module" in message
        assert "workers=1" in message
    assert "analyzer 'notebook_norm' (NotebookNorm)" in result["analyzer"]
    assert result["toy_artifacts"] == []  # refused before anything was written
