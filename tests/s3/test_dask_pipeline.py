"""train -> analyze on a Dask LocalCluster -> load, with the run on a real S3 endpoint.

Nothing is mocked: moto's S3 server (a separate process, over HTTP), a LocalCluster with two
worker processes, and the toy family. Results are compared with a sequential run on a local
directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import epochstore.pipeline.worker as worker_module
from epochstore import AnalysisPipeline, ArtifactLoader, ArtifactStore
from epochstore.cli import main
from epochstore.testing.faults import KillOnce
from epochstore.testing.s3 import stores_opened_here

# torch: absent in the store-only CI job (Python 3.12), where these tests skip.
pytest.importorskip("torch")
from epochstore.testing.snapshots import assert_same, snapshot
from epochstore.testing.toy import HiddenActivations, OutputNorm, ToyFamily, WeightDrift

EPOCHS = [0, 1, 2, 3, 5, 8]
KILLED = (3,)  # one worker dies; the other takes the retried task at once


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A sequential run on a local directory: what every cluster run must equal."""
    run = tmp_path_factory.mktemp("reference") / "run"
    ToyFamily().train(str(run), {"epochs": EPOCHS})
    analyzers = [*ToyFamily().analyzers(), KillOnce(marker_dir=str(run))]
    assert AnalysisPipeline(run, analyzers=analyzers).run(progress=False).ok
    return snapshot(run)


def test_train_analyze_on_a_local_cluster_and_load_from_s3(
    s3: Any, dask_client: Any, reference: dict
) -> None:
    url, options = s3.url("runs", "toy"), s3.storage_options
    ToyFamily().train(url, {"epochs": EPOCHS}, storage_options=options)

    pipeline = AnalysisPipeline(url, storage_options=options)
    assert len(pipeline.plan()) == 3 * len(EPOCHS)
    report = pipeline.run(client=dask_client, progress=False)
    assert report.ok
    assert sorted(report.written) == sorted(
        (name, e) for name in ("hidden_activations", "output_norm", "weight_drift") for e in EPOCHS
    )
    # The tasks ran on the workers, which opened the store themselves; this process opened no
    # task's store and holds no task result.
    assert not any(url in key for key in worker_module._STORES)
    opened = dask_client.run(stores_opened_here, url)
    assert sum(opened.values()) >= 1
    assert not dask_client.futures
    assert len(AnalysisPipeline(url, storage_options=options).plan()) == 0

    expected = {k: v for k, v in reference.items() if k[0] != "kill_once"}
    assert_same(snapshot(url, options), expected)

    # Loading stays lazy and computes on the same cluster.
    loader = ArtifactLoader(url, storage_options=options)
    ds = loader.load_epochs("hidden_activations")
    assert ds["activations"].chunks is not None
    neuron = dask_client.compute(ds["activations"].isel(unit=3).data).result()
    np.testing.assert_allclose(
        neuron, np.stack([reference[("hidden_activations", e)]["activations"][3] for e in EPOCHS]),
        rtol=1e-6,
    )
    mean = dask_client.compute(ds["activations"].mean("epoch")).result()
    np.testing.assert_allclose(
        mean.values,
        np.mean([reference[("hidden_activations", e)]["activations"] for e in EPOCHS], axis=0),
        rtol=1e-5,
    )


def test_a_worker_killed_mid_task_is_retried_and_the_store_stays_consistent(
    s3: Any, dask_client: Any, reference: dict, tmp_path: Path
) -> None:
    url, options = s3.url("runs", "killed"), s3.storage_options
    ToyFamily().train(url, {"epochs": EPOCHS}, storage_options=options)
    killer = KillOnce(marker_dir=str(tmp_path), run_url=url, storage_options=options,
                      epochs=KILLED)
    # The killer runs between two analyzers: its epoch is half written when the worker dies.
    analyzers = [HiddenActivations(), killer, OutputNorm(), WeightDrift()]
    pids_before = set(dask_client.run(os.getpid).values())

    report = AnalysisPipeline(url, analyzers=analyzers, storage_options=options).run(
        client=dask_client, progress=False
    )

    assert all(Path(tmp_path, f"killed_epoch_{e}").exists() for e in KILLED)
    assert set(dask_client.run(os.getpid).values()) != pids_before  # workers did die
    assert report.ok
    # The killed attempts had written hidden_activations; the reruns wrote what was missing ...
    assert len(report.written) == 4 * len(EPOCHS) - len(KILLED)
    rerun = {r.epoch: r.already_done for r in report.results if r.already_done}
    assert rerun == dict.fromkeys(KILLED, ("hidden_activations",))
    assert len(AnalysisPipeline(url, analyzers=analyzers, storage_options=options).plan()) == 0
    assert_same(snapshot(url, options), reference)  # ... and the store equals a clean run
    # What the killed writers left was overwritten by the retries: nothing is left over.
    assert ArtifactStore(url, storage_options=options).cleanup() == []


def test_cli_analyze_on_a_dask_scheduler(s3: Any, dask_client: Any, reference: dict) -> None:
    import json

    url, options = s3.url("runs", "cli"), s3.storage_options
    ToyFamily().train(url, {"epochs": EPOCHS[:3]}, storage_options=options)
    status = main([
        "analyze", url, "--quiet", "--analyzers", "output_norm",
        "--scheduler", dask_client.scheduler.address,
        "--storage-options", json.dumps(options),
    ])
    assert status == 0
    expected = {k: v for k, v in reference.items() if k[0] == "output_norm" and k[1] in EPOCHS[:3]}
    assert_same(snapshot(url, options), expected)
