"""Your own model, your own training loop: checkpoints, a recorded model, generic analyses.

A small MLP learns a random teacher's labels with a plain torch loop that saves checkpoints
with ``CheckpointManager``. ``epochstore.record_model`` records how to rebuild the model (this
file's ``make_mlp``) and a probe batch; ``epochstore analyze`` then computes parameter
statistics and the hidden layer's activations on the probe for every checkpoint.

Run: ``python examples/own_model.py [--run runs/own_model] [--epochs 200] [--every 20]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import epochstore
from epochstore import CheckpointManager


class MLP(nn.Module):
    """``n_in -> n_hidden (ReLU) -> n_classes``; modules ``hidden``, ``act``, ``out``."""

    def __init__(self, n_in: int, n_hidden: int, n_classes: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(n_hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.out(self.act(self.hidden(x)))
        return logits


def make_mlp(n_in: int = 8, n_hidden: int = 32, n_classes: int = 3, seed: int = 0) -> MLP:
    """The model factory ``epochstore analyze`` calls (``"own_model:make_mlp"``)."""
    torch.manual_seed(seed)
    return MLP(n_in, n_hidden, n_classes)


def make_data(n: int, n_in: int, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and the labels a fixed random linear teacher gives them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=gen)
    teacher = torch.randn(n_in, n_classes, generator=gen)
    return x, (x @ teacher).argmax(dim=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(Path("runs", "own_model")))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--every", type=int, default=20, help="save a checkpoint every N epochs")
    args = parser.parse_args(argv)
    kwargs = {"n_in": 8, "n_hidden": 32, "n_classes": 3, "seed": 0}

    # 1. Your own loop, saving checkpoints into <run>/checkpoints.
    model = make_mlp(**kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = make_data(512, kwargs["n_in"], kwargs["n_classes"], seed=1)
    manager = CheckpointManager(checkpoint_dir=Path(args.run, "checkpoints"))
    for epoch in range(args.epochs + 1):
        loss = nn.functional.cross_entropy(model(x), y)
        if epoch % args.every == 0 and epoch not in manager.epochs():
            accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
            manager.save(model=model, optimizer=optimizer, epoch=epoch,
                         metrics={"loss": loss.item(), "accuracy": accuracy})
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    # 2. Record how to rebuild the model, and a probe batch to analyse it on.
    epochstore.record_model(args.run, factory="own_model:make_mlp", kwargs=kwargs, probe=x[:64])

    # 3. Analyse every checkpoint: what `epochstore analyze RUN --capture hidden,act` does.
    from epochstore.cli import main as epochstore_main

    print(f"$ epochstore analyze {args.run} --capture hidden,act")
    status = epochstore_main(["analyze", args.run, "--capture", "hidden,act", "--quiet"])
    if status != 0:
        return status

    loader = epochstore.ArtifactLoader(args.run)
    stats = loader.load_epochs("parameter_stats")
    names = loader.manifest("parameter_stats").params["parameters"]
    print(f"analyzers: {loader.get_available_analyzers()}")
    for i, name in enumerate(names):
        norms = stats["norm"].values[:, i]
        print(f"  ||{name}||: epoch {stats.epoch.values[0]} {norms[0]:.3f} -> "
              f"epoch {stats.epoch.values[-1]} {norms[-1]:.3f}")
    hidden = loader.load_epoch("capture_act", int(stats.epoch.values[-1]))["activations"]
    print(f"  hidden ReLU activations at the last epoch: {hidden.dims} {hidden.shape}, "
          f"{float((hidden.values > 0).mean()):.0%} active")
    print(f"\nsee them: epochstore serve {Path(args.run).parent}   (then open http://127.0.0.1:8050)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
