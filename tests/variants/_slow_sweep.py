"""Train a toy sweep slowly (a pause after every checkpoint), for the follow test.

Usage: python _slow_sweep.py ROOT SWEEP_JSON OVERRIDES_JSON PAUSE
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any


def main() -> None:
    from epochstore.sweeps import sweep
    from epochstore.testing.toy import ToyFamily, register

    register()
    root, swept, overrides = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    pause = float(sys.argv[4])

    class Slow(ToyFamily):
        def train(
            self,
            location: str,
            config: Mapping[str, Any],
            *,
            progress: Callable[[int, Mapping[str, float]], None] | None = None,
            storage_options: Mapping[str, Any] | None = None,
        ) -> None:
            super().train(location, config, progress=lambda epoch, metrics: time.sleep(pause),
                          storage_options=storage_options)

    print("training", flush=True)
    sweep(root, Slow(), swept, overrides=overrides, threads=1, progress=False)
    print("trained", flush=True)


if __name__ == "__main__":
    main()
