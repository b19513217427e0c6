"""Storage benchmarks: formats, timing, and codec/chunking recommendations (``epochstore bench``).

- :mod:`epochstore.bench.formats`: one field over many epochs in ``.npy``, ``.npz`` (per epoch
  and all epochs in one file), safetensors, epochstore (any codec and chunking) and plain zarr;
- :mod:`epochstore.bench.timing`: medians of repeated timings, peak RSS, cold-cache reads and the
  physical limits (memcpy, page-cache and disk read bandwidth);
- :mod:`epochstore.bench.compare`: a codec x chunking comparison on a sample of epochs;
- :mod:`epochstore.bench.recommend`: the rule that picks a codec and chunking, and the table.

The full suite is ``benchmarks/bench_formats.py``; results are in ``benchmarks/README.md``.
"""

from epochstore.bench.compare import BenchRow, compare, parse_chunking, parse_codec, sample_run
from epochstore.bench.recommend import Recommendation, format_table, recommend

__all__ = [
    "BenchRow",
    "Recommendation",
    "compare",
    "format_table",
    "parse_chunking",
    "parse_codec",
    "recommend",
    "sample_run",
]
