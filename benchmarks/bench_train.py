"""Seconds per training epoch of the modadd presets, and what each part of an epoch costs.

Side by side in one run (the machine is shared, so only same-run ratios mean much):

- ``step``: one full-batch epoch as :func:`~epochstore.families.modadd.train.train_loop` runs
  it (``final_logits`` forward, float64 loss, backward, AdamW), at 1 and 2 torch threads;
- ``step_full_forward``: the same with the full ``forward`` (MLP and unembedding at all three
  positions) instead of ``final_logits``;
- ``evaluate``: the train/test metrics of one checkpoint (only checkpoint epochs pay it).

Usage::

    python benchmarks/bench_train.py [--epochs 200] [--paper-epochs 30] [--out results/train.json]

Results are written up in ``docs/families/modadd.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from epochstore.families.modadd.config import get_preset
from epochstore.families.modadd.data import make_data
from epochstore.families.modadd.model import build_model
from epochstore.families.modadd.train import evaluate, loss_fn, make_optimizer


def _time_steps(preset: str, epochs: int, threads: int, full_forward: bool) -> float:
    torch.set_num_threads(threads)
    cfg = get_preset(preset)
    model = build_model(cfg)
    optimizer = make_optimizer(model, cfg)
    data = make_data(cfg)
    inputs, labels = data.train_inputs, data.train_labels

    def step() -> None:
        logits = model(inputs)[:, -1] if full_forward else model.final_logits(inputs)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(epochs):
        step()
    return (time.perf_counter() - started) / epochs


def _time_evaluate(preset: str, threads: int, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    cfg = get_preset(preset)
    model, data = build_model(cfg), make_data(cfg)
    evaluate(model, data)
    started = time.perf_counter()
    for _ in range(repeats):
        evaluate(model, data)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200, help="timed demo epochs")
    parser.add_argument("--paper-epochs", type=int, default=30, help="timed paper epochs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/train.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for preset, epochs in (("demo", args.epochs), ("paper", args.paper_epochs)):
        for threads in (1, 2):
            row = {
                "preset": preset,
                "threads": threads,
                "step_s": _time_steps(preset, epochs, threads, full_forward=False),
                "step_full_forward_s": _time_steps(preset, epochs, threads, full_forward=True),
                "evaluate_s": _time_evaluate(preset, threads),
            }
            rows.append(row)
            print(
                f"{preset:<6} threads={threads}  step {row['step_s'] * 1e3:7.1f} ms  "
                f"full-forward step {row['step_full_forward_s'] * 1e3:7.1f} ms  "
                f"evaluate {row['evaluate_s'] * 1e3:7.1f} ms",
                flush=True,
            )
    load = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"loadavg": load, "rows": rows}, indent=2) + "\n")
    print(f"load average {load[0]:.1f} (cores: {os.cpu_count()}); wrote {args.out}")


if __name__ == "__main__":
    main()
