"""Training checkpoints in safetensors files: crash-safe saves, retention, verified loading.

>>> from epochstore.checkpoints import CheckpointManager   # doctest: +SKIP
>>> manager = CheckpointManager("runs/p113/checkpoints", max_checkpoints=5)  # doctest: +SKIP

See ``docs/checkpoints.md`` for the guide, the file format and the crash-safety protocol.
"""

# Names load on first use (see epochstore/__init__.py); __init__.pyi lists them.
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
