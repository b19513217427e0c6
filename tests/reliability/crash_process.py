"""Train then analyze a toy run: the process the crash harness kills at random moments.

Usage: python crash_process.py RUN N_EPOCHS
"""

from __future__ import annotations

import sys


def main() -> None:
    from epochstore import AnalysisPipeline
    from epochstore.testing.toy import ToyFamily, register

    register()
    run, n = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    ToyFamily().train(run, {"epochs": list(range(n)), "n_hidden": 256, "n_samples": 256})
    AnalysisPipeline(run).run(progress=False)
    print("done", flush=True)


if __name__ == "__main__":
    main()
