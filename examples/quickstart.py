"""Write a few epochs of a fake analyzer into a store, then read them back lazily.

Run: ``python examples/quickstart.py [RUN_DIR]`` (default ``runs/quickstart``).
"""

from __future__ import annotations

import sys

import numpy as np

from epochstore import ArtifactLoader, ArtifactStore


def main(run: str = "runs/quickstart") -> None:
    store = ArtifactStore(run)
    rng = np.random.default_rng(0)
    for epoch in range(0, 1000, 100):
        if store.has_epoch("neuron_activations", epoch):
            continue  # already written: an epoch is done when its node exists
        activations = np.maximum(rng.standard_normal((512, 23, 23)), 0).astype(np.float32)
        store.write_epoch(
            "neuron_activations",
            epoch,
            {"activations": activations},
            dims={"activations": ("neuron", "a", "b")},
        )
    loader = ArtifactLoader(run)
    print("analyzers:", loader.get_available_analyzers())
    print("epochs:   ", loader.get_epochs("neuron_activations"))
    one = loader.load_epoch("neuron_activations", 500)
    print("epoch 500, neuron 7, mean activation:", float(one["activations"][7].mean()))
    stacked = loader.load_epochs("neuron_activations")
    trace = stacked["activations"].sel(neuron=7).mean(["a", "b"]).values
    print("neuron 7 across epochs:", np.round(trace, 3))
    print(f"store: {run}/artifacts (open it with xarray.open_zarr or zarr as well)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
