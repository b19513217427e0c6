"""A writer process for the crash and concurrency tests (run as a script, killed at will).

Usage: python writer_process.py RUN MODE [N]
  epochs:    write epochs 0..N-1 (skipping existing ones), each filled from its own seed
  overwrite: overwrite epoch 0 N times, each version a constant array (a mix is detectable)
It prints "ready" once imports are done, so the test can time its kill after start-up.
"""

from __future__ import annotations

import sys

import numpy as np

SHAPE = (32, 64, 64)
CHUNKS = {"activations": (4, 64, 64)}  # several chunks: the sharded path is exercised


def expected(epoch: int) -> np.ndarray:
    """The data epoch ``epoch`` must hold."""
    return np.random.default_rng(epoch).standard_normal(SHAPE).astype(np.float32)


def main() -> None:
    from epochstore import ArtifactStore, EpochExistsError

    run, mode = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    store = ArtifactStore(run)
    print("ready", flush=True)
    dims = {"activations": ("neuron", "a", "b")}
    if mode == "epochs":
        for epoch in range(n):
            try:
                store.write_epoch(
                    "acts", epoch, {"activations": expected(epoch), "seed": np.int64(epoch)},
                    dims=dims, chunks=CHUNKS,
                )
            except EpochExistsError:
                continue
    elif mode == "overwrite":
        for version in range(n):
            store.write_epoch(
                "acts", 0, {"activations": np.full(SHAPE, version, np.float32),
                            "seed": np.int64(version)},
                dims=dims, overwrite=True, chunks=CHUNKS,
            )
    print("done", flush=True)


if __name__ == "__main__":
    main()
