"""A toy model family: a 2-layer MLP on fixed random data, for fast end-to-end tests.

It is also the smallest worked example of adding a family without touching epochstore:
implement the :class:`~epochstore.interface.ModelFamily` methods and register it. It is not an
installed plug-in: tests (and worker scripts they start) call :func:`register` first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from epochstore.interface import Analyzer, AnalyzerBase, EpochContext, FieldSpec, RunContext
from epochstore.location import join
from epochstore.plugins import register_family
from epochstore.run import CHECKPOINTS_DIR, Variant, write_variant

__all__ = [
    "HiddenActivations", "OutputNorm", "ToyFamily", "ToyMLP", "WeightDrift", "register",
]

DEFAULT_CONFIG: dict[str, Any] = {"n_in": 6, "n_hidden": 16, "n_out": 3, "n_samples": 32,
                                  "seed": 0, "epochs": [0, 1, 2, 3, 4, 5], "lr": 0.1}


class ToyMLP(nn.Module):
    """``n_in -> n_hidden (ReLU) -> n_out``."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.out = nn.Linear(n_hidden, n_out)

    def forward(
        self, x: torch.Tensor, cache: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        h = torch.relu(self.hidden(x))
        y: torch.Tensor = self.out(h)
        if cache is not None:
            cache["hidden"] = h
            cache["logits"] = y
        return y


def _data(config: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(int(config["seed"]))
    x = torch.randn(int(config["n_samples"]), int(config["n_in"]), generator=gen)
    y = torch.randint(0, int(config["n_out"]), (int(config["n_samples"]),), generator=gen)
    return x, y


@dataclass
class HiddenActivations(AnalyzerBase):
    """Hidden-layer activations on the probe: ``(unit, sample)``."""

    name: str = "hidden_activations"
    version: str = "1"
    fields: Mapping[str, FieldSpec] = field(
        default_factory=lambda: {"activations": FieldSpec(("unit", "sample"))}
    )

    def compute(
        self, model: nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, np.ndarray]:
        return {"activations": cache["hidden"].T.cpu().numpy()}


@dataclass
class OutputNorm(AnalyzerBase):
    """Norm of the logits and the loss recorded with the checkpoint."""

    name: str = "output_norm"
    version: str = "1"
    fields: Mapping[str, FieldSpec] = field(
        default_factory=lambda: {"norm": FieldSpec(()), "loss": FieldSpec(())}
    )

    def compute(
        self, model: nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, np.ndarray]:
        return {
            "norm": np.asarray(float(cache["logits"].norm())),
            "loss": np.asarray(context.metrics.get("loss", np.nan)),
        }


@dataclass
class WeightDrift(AnalyzerBase):
    """Distance of the hidden weights from the *final* checkpoint's (a run-level param)."""

    name: str = "weight_drift"
    version: str = "1"
    fields: Mapping[str, FieldSpec] = field(
        default_factory=lambda: {"distance": FieldSpec(())}
    )

    def prepare(self, run: RunContext) -> Mapping[str, Any]:
        final = run.load_model(run.epochs[-1])
        return {"final_hidden": final.hidden.weight.detach().cpu().numpy().tolist()}

    def compute(
        self, model: nn.Module, cache: Mapping[str, torch.Tensor], probe: Any,
        context: EpochContext,
    ) -> dict[str, np.ndarray]:
        final = np.asarray(context.params["final_hidden"], dtype=np.float32)
        assert isinstance(model, ToyMLP)
        weight = model.hidden.weight.detach().cpu().numpy()
        return {"distance": np.asarray(float(np.linalg.norm(weight - final)))}


class ToyFamily:
    """The toy family (registered as ``"toy"``)."""

    name = "toy"

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        return {"demo": DEFAULT_CONFIG}

    def build_model(self, config: Mapping[str, Any]) -> nn.Module:
        torch.manual_seed(int(config["seed"]))
        return ToyMLP(int(config["n_in"]), int(config["n_hidden"]), int(config["n_out"]))

    def make_probe(self, config: Mapping[str, Any], device: str = "cpu") -> Any:
        return _data(config)[0].to(device)

    def run_with_cache(self, model: nn.Module, probe: Any) -> Mapping[str, torch.Tensor]:
        cache: dict[str, torch.Tensor] = {}
        model(probe, cache=cache)
        return cache

    def analyzers(self) -> Sequence[Analyzer]:
        return [HiddenActivations(), OutputNorm(), WeightDrift()]

    def train(
        self,
        location: str,
        config: Mapping[str, Any],
        *,
        progress: Callable[[int, Mapping[str, float]], None] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Train into ``location`` (a local directory or an fsspec URL with ``storage_options``)."""
        from epochstore.checkpoints import CheckpointManager

        config = {**DEFAULT_CONFIG, **config}
        write_variant(location, Variant(family=self.name, params=config),
                      storage_options=storage_options)
        manager = CheckpointManager(checkpoint_dir=join(location, CHECKPOINTS_DIR),
                                    storage_options=storage_options)
        model = self.build_model(config)
        optimizer = torch.optim.SGD(model.parameters(), lr=float(config["lr"]))
        x, y = _data(config)
        schedule = {int(e) for e in config["epochs"]}
        saved = set(manager.epochs())
        start = 0
        if saved:  # resume: the checkpoint of epoch e holds the weights before step e
            start = manager.load_into(model, optimizer=optimizer)["epoch"]
        for epoch in range(start, max(schedule) + 1):
            loss = nn.functional.cross_entropy(model(x), y)
            if epoch in schedule and epoch not in saved:
                metrics = {"loss": float(loss.detach())}
                manager.save(model=model, optimizer=optimizer, epoch=epoch, metrics=metrics,
                             config=config)
                if progress is not None:
                    progress(epoch, metrics)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()


def register() -> None:
    """Register :class:`ToyFamily` as ``"toy"`` in this process (tests do this first)."""
    register_family("toy", ToyFamily)
