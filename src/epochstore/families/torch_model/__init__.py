"""Your own torch model, no family class: the generic family ``"torch"``.

Train with your own loop and :class:`~epochstore.CheckpointManager`, then record how to rebuild
the model and what to run it on::

    epochstore.record_model(run, factory="mypkg.models:make_mlp", kwargs={"width": 64},
                            probe=x_batch)

``epochstore analyze RUN`` then runs the generic analyzers (parameter statistics, and
activations of named modules with ``--capture NAME[,NAME...]``). The family registers as
``"torch"`` through the ``epochstore.families`` entry point.
"""

from __future__ import annotations

from epochstore.families.torch_model.family import FAMILY_NAME, TorchModelFamily
from epochstore.families.torch_model.record import (
    PROBE_FILE,
    call_model,
    record_model,
    resolve_callable,
)

__all__ = [
    "FAMILY_NAME",
    "PROBE_FILE",
    "TorchModelFamily",
    "call_model",
    "record_model",
    "resolve_callable",
]
