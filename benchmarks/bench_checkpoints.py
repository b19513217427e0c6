"""Benchmark CheckpointManager: save and load time, and peak RSS, for two model sizes.

Cases
-----
modadd       the Modulo Addition 1-layer transformer (d_model 128, d_mlp 512, 4 heads,
             vocab 114 in / 113 out, ~227k parameters) with AdamW state
linear100    a ~100 MB fp32 model (6 x Linear(2048, 2048)), model only
linear100+opt  the same with AdamW state (a ~300 MB file)

Every measurement runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) belongs to that
operation alone: ``baseline`` is the RSS just before the timed operation (Python, torch and,
for saves, the model and optimizer), ``peak`` the process's maximum. Saves include both
``fsync`` calls and the manifest commit; loads verify every byte read against its sha256.
A plain ``safetensors.torch`` save/load of the model state (no checksums, no fsync; the lazily
mapped tensors read once) is given as a reference. Times are the median of ``--repeat`` runs.

Run::

    python benchmarks/bench_checkpoints.py            # prints a markdown table
    python benchmarks/bench_checkpoints.py --repeat 5 --dir /some/disk
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

CASES = ("modadd", "linear100", "linear100+opt")
OPERATIONS = ("save", "load", "load_model", "ref_save", "ref_load")


class ModAddTransformer(torch.nn.Module):
    """Parameter shapes of the Modulo Addition 1-layer transformer (no LayerNorm)."""

    def __init__(
        self,
        d_vocab: int = 114,
        d_vocab_out: int = 113,
        d_model: int = 128,
        d_mlp: int = 512,
        n_heads: int = 4,
        n_ctx: int = 3,
    ) -> None:
        super().__init__()
        d_head = d_model // n_heads

        def param(*shape: int) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.randn(*shape) / shape[-1] ** 0.5)

        self.W_E = param(d_vocab, d_model)
        self.W_pos = param(n_ctx, d_model)
        self.W_Q, self.W_K, self.W_V = (param(n_heads, d_model, d_head) for _ in range(3))
        self.W_O = param(n_heads, d_head, d_model)
        self.b_Q, self.b_K, self.b_V = (param(n_heads, d_head) for _ in range(3))
        self.b_O = param(d_model)
        self.W_in, self.b_in = param(d_model, d_mlp), param(d_mlp)
        self.W_out, self.b_out = param(d_mlp, d_model), param(d_model)
        self.W_U, self.b_U = param(d_model, d_vocab_out), param(d_vocab_out)


def build(case: str) -> tuple[torch.nn.Module, torch.optim.Optimizer | None]:
    torch.manual_seed(0)
    model: torch.nn.Module
    if case == "modadd":
        model = ModAddTransformer()
    else:
        model = torch.nn.Sequential(*(torch.nn.Linear(2048, 2048) for _ in range(6)))
    if case == "linear100":
        return model, None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    for _ in range(2):  # fill exp_avg / exp_avg_sq
        for parameter in model.parameters():
            parameter.grad = torch.randn_like(parameter)
        optimizer.step()
    return model, optimizer


def rss_mb() -> float:
    with Path("/proc/self/statm").open() as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(case: str, operation: str, directory: Path, repeat: int) -> dict[str, Any]:
    from safetensors.torch import load_file, save_file

    from epochstore.checkpoints import CheckpointManager

    checkpoints = directory / case.replace("+", "_")
    reference = directory / f"{case.replace('+', '_')}.reference.safetensors"
    model = optimizer = None
    if operation in ("save", "ref_save"):
        model, optimizer = build(case)
    manager = CheckpointManager(str(checkpoints))
    baseline = rss_mb()
    times = []
    for run in range(repeat):
        start = time.perf_counter()
        if operation == "save":
            assert model is not None
            manager.save(
                model=model,
                optimizer=optimizer,
                epoch=run,
                metrics={"loss": 1.0},
                config={"case": case},
                overwrite=True,
            )
        elif operation == "load":
            loaded: Any = manager.load(epoch=0)
        elif operation == "load_model":
            loaded = manager.load(epoch=0, include_optimizer=False)
        elif operation == "ref_save":
            assert model is not None
            save_file(model.state_dict(), str(reference))
        else:
            loaded = load_file(str(reference))
            for tensor in loaded.values():  # load_file maps lazily: read the data, as we do
                tensor.sum()
        times.append(time.perf_counter() - start)
        loaded = None
        del loaded
    size = (
        reference.stat().st_size
        if operation.startswith("ref")
        else Path(manager.path(0)).stat().st_size
    )
    return {
        "case": case,
        "operation": operation,
        "seconds": statistics.median(times),
        "baseline_mb": baseline,
        "peak_mb": peak_mb(),
        "file_mb": size / 2**20,
    }


def run_worker(case: str, operation: str, directory: Path, repeat: int) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            case,
            operation,
            "--dir",
            str(directory),
            "--repeat",
            str(repeat),
        ],
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "OPERATION"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.dir, args.repeat)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        directory = Path(scratch)
        rows = []
        for case in CASES:
            for operation in OPERATIONS:
                if case == "linear100" and operation == "load_model":
                    continue  # no optimizer: the same as "load"
                if case == "linear100+opt" and operation.startswith("ref"):
                    continue  # the same model as linear100
                rows.append(run_worker(case, operation, directory, args.repeat))
    labels = {
        "save": "save (model + optimizer)",
        "load": "load, verified",
        "load_model": "load model only, verified",
        "ref_save": "reference: safetensors save_file (model)",
        "ref_load": "reference: safetensors load_file + read (model)",
    }
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, median of {args.repeat} runs\n")
    print("| case | operation | file (MB) | time (s) | RSS before (MB) | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        label = labels[row["operation"]]
        if row["case"] == "linear100" and row["operation"] == "save":
            label = "save (model only)"
        print(
            f"| {row['case']} | {label} | {row['file_mb']:.1f} | {row['seconds']:.3f} | "
            f"{row['baseline_mb']:.0f} | {row['peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
