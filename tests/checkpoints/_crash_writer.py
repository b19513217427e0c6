"""Helper of test_crash.py: save checkpoints in forked children and SIGKILL them at random moments.

Usage: ``python _crash_writer.py <base dir> <trials> <seed>``. Torch is imported once here;
each trial forks a writer that saves epoch after epoch into ``<base>/trial<N>`` (every tensor
of epoch ``e`` filled with ``e``), and kills it with SIGKILL after a seeded random delay.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import torch

from epochstore.checkpoints import CheckpointManager


def expected_state(epoch: int) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Return the model and optimizer state dicts saved for ``epoch``."""
    model = {
        "layer.weight": torch.full((192, 192), float(epoch)),
        "layer.bias": torch.full((192,), float(epoch)),
    }
    optimizer = {
        "state": {
            0: {
                "exp_avg": torch.full((192, 192), -float(epoch)),
                "step": torch.tensor(float(epoch)),
            }
        },
        "param_groups": [{"params": [0], "lr": epoch / 1000}],
    }
    return model, optimizer


def write_forever(directory: str) -> None:
    torch.set_num_threads(1)
    manager = CheckpointManager(directory, max_checkpoints=3, keep_every=5)
    for epoch in range(100_000):
        model, optimizer = expected_state(epoch)
        manager.save(
            model=model,
            optimizer=optimizer,
            epoch=epoch,
            metrics={"loss": 1.0 / (1 + epoch % 7)},
            config={"epoch": epoch},
        )


def main() -> None:
    base, trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    for trial in range(trials):
        delay = rng.uniform(0.02, 0.4)
        pid = os.fork()
        if pid == 0:  # the writer
            try:
                write_forever(str(Path(base) / f"trial{trial}"))
            finally:
                os._exit(0)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
