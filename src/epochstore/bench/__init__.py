"""Storage benchmarks: formats, timing, and codec/chunking recommendations (``epochstore bench``).

- :mod:`epochstore.bench.formats`: one field over many epochs in ``.npy``, ``.npz`` (per epoch
  and all epochs in one file), safetensors, epochstore (any codec and chunking) and plain zarr;
- :mod:`epochstore.bench.timing`: medians of repeated timings, peak RSS, cold-cache reads and the
  physical limits (memcpy, page-cache and disk read bandwidth);
- :mod:`epochstore.bench.compare`: a codec x chunking comparison on a sample of epochs;
- :mod:`epochstore.bench.recommend`: the rule that picks a codec and chunking, and the table.

The full suite is ``benchmarks/bench_formats.py``; results are in ``benchmarks/README.md``.
"""

# Names load on first use (see epochstore/__init__.py); __init__.pyi lists them.
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
