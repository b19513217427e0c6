"""The generic family ``"torch"``: any model rebuilt from a recorded factory, analysed on a probe.

It trains nothing (the user's loop does) and knows nothing of the model: its analyzers are the
generic ones of :mod:`epochstore.analysis`. Captures of named modules are added per call
(``epochstore analyze RUN --capture NAME``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from epochstore.errors import CorruptArtifactError, EpochstoreError
from epochstore.families.torch_model.record import (
    FAMILY_NAME,
    PROBE_FILE,
    call_model,
    probe_from_tensors,
    resolve_callable,
)

if TYPE_CHECKING:
    import torch

    from epochstore.interface import Analyzer

__all__ = ["FAMILY_NAME", "TorchModelFamily"]


class TorchModelFamily:
    """Runs recorded with :func:`~epochstore.record_model`: a factory, its kwargs, a probe.

    Parameters
    ----------
    location
        The run whose saved probe :meth:`make_probe` reads (the pipeline binds it with
        :meth:`for_run`).
    storage_options
        fsspec options when ``location`` is a URL.
    """

    name = FAMILY_NAME

    def __init__(
        self, location: str | None = None, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        self.location = location
        self.storage_options = dict(storage_options) if storage_options else None

    def __repr__(self) -> str:
        return f"TorchModelFamily(location={self.location!r})"

    def for_run(
        self, location: str, storage_options: Mapping[str, Any] | None = None
    ) -> TorchModelFamily:
        """Return this family bound to ``location`` (where the probe was saved)."""
        return TorchModelFamily(location, storage_options)

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """None: a ``"torch"`` run is trained by your own loop, not by epochstore."""
        return {}

    def build_model(self, config: Mapping[str, Any]) -> torch.nn.Module:
        """Call the recorded factory with its recorded keyword arguments."""
        import torch

        factory = config.get("factory")
        if not isinstance(factory, str):
            raise EpochstoreError(
                "this run records no model factory ('factory' in variant.json params); record "
                "one with epochstore.record_model(run, factory=..., probe=...)"
            )
        model = resolve_callable(factory, "model factory")(**dict(config.get("kwargs") or {}))
        if not isinstance(model, torch.nn.Module):
            raise EpochstoreError(
                f"the model factory {factory!r} returned {type(model).__name__}, not a "
                "torch.nn.Module"
            )
        return model

    def make_probe(self, config: Mapping[str, Any], device: str = "cpu") -> Any:
        """Load the probe saved with the run, or call the recorded probe factory.

        Raises
        ------
        CorruptArtifactError
            If the saved probe's checksum differs from the one recorded.
        """
        import torch

        spec = config.get("probe")
        if not isinstance(spec, Mapping):
            raise EpochstoreError(
                "this run records no probe ('probe' in variant.json params); record one with "
                "epochstore.record_model(run, factory=..., probe=...)"
            )
        if "factory" in spec:
            probe = resolve_callable(str(spec["factory"]), "probe factory")(
                **dict(spec.get("kwargs") or {})
            )
        else:
            probe = probe_from_tensors(str(spec.get("kind")), self._load_probe(spec))
        return _to_device(probe, torch.device(device))

    def _load_probe(self, spec: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        from safetensors.torch import load

        from epochstore.location import open_filesystem

        if self.location is None:
            raise EpochstoreError(
                "the saved probe is in the run directory: use TorchModelFamily().for_run(run) "
                "(AnalysisPipeline does)"
            )
        fs, root = open_filesystem(self.location, self.storage_options)
        path = fs.join(root, str(spec.get("file", PROBE_FILE)))
        data = fs.read_bytes(path)
        expected = spec.get("sha256")
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise CorruptArtifactError(
                f"{path} does not match the checksum in variant.json: it changed or is "
                "damaged; record the probe again with epochstore.record_model (in a new run "
                "if artifacts were computed on the old one)"
            )
        return load(data)

    def run_with_cache(self, model: torch.nn.Module, probe: Any) -> Mapping[str, torch.Tensor]:
        """Run the model on the probe; the cache holds ``output`` when it is one tensor.

        Module outputs that analyzers capture are added by the pipeline (forward hooks).
        """
        import torch

        with torch.no_grad():
            output = call_model(model, probe)
        return {"output": output.detach()} if isinstance(output, torch.Tensor) else {}

    def analyzers(self) -> Sequence[Analyzer]:
        """The generic analyzers: ``parameter_stats``."""
        from epochstore.analysis.parameters import ParameterStats

        return [ParameterStats()]

    def train(
        self,
        location: str,
        config: Mapping[str, Any],
        *,
        progress: Callable[[int, Mapping[str, float]], None] | None = None,
    ) -> None:
        """Refuse: train with your own loop and record the model with ``record_model``."""
        raise EpochstoreError(
            "the 'torch' family trains nothing: train with your own loop, save checkpoints "
            "with CheckpointManager(checkpoint_dir=<run>/checkpoints), then call "
            "epochstore.record_model(<run>, factory=..., probe=...)"
        )


def _to_device(probe: Any, device: torch.device) -> Any:
    import torch

    if isinstance(probe, torch.Tensor):
        return probe.to(device)
    if isinstance(probe, Mapping):
        return {key: _to_device(value, device) for key, value in probe.items()}
    if isinstance(probe, tuple | list):
        return type(probe)(_to_device(value, device) for value in probe)
    return probe
