"""Run a sweep that SIGKILLs itself mid-way: in variant VARIANT, after saving epoch EPOCH.

Usage: python _kill_sweep.py FAMILY ROOT VARIANT EPOCH SWEEP_JSON OVERRIDES_JSON THREADS

The kill is deterministic (no timing): the family's progress callback sends SIGKILL to this
process once the named variant has saved the given checkpoint epoch.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any


def main() -> None:
    from epochstore.families.modadd import ModAddFamily
    from epochstore.sweeps import sweep
    from epochstore.testing.toy import ToyFamily, register

    register()
    family_name, root, variant, epoch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    swept, overrides = json.loads(sys.argv[5]), json.loads(sys.argv[6])
    base: Any = ToyFamily if family_name == "toy" else ModAddFamily

    class Killing(base):  # type: ignore[misc, valid-type]
        def train(
            self,
            location: str,
            config: Mapping[str, Any],
            *,
            progress: Callable[[int, Mapping[str, float]], None] | None = None,
        ) -> None:
            def hook(at: int, metrics: Mapping[str, float]) -> None:
                # modadd reports every epoch; its checkpoint epochs report all four metrics.
                saved = family_name == "toy" or "test_loss" in metrics
                if location.endswith(variant) and at == epoch and saved:
                    print(f"killing at {location} epoch {at}", flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)

            super().train(location, config, progress=hook)

    sweep(root, Killing(), swept, overrides=overrides, threads=int(sys.argv[7]), progress=False)
    print("sweep finished without the kill", flush=True)


if __name__ == "__main__":
    main()
