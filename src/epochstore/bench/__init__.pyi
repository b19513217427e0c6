"""Type stub of :mod:`epochstore.bench`: its public names, loaded lazily."""

from .compare import BenchRow, compare, parse_chunking, parse_codec, sample_run
from .recommend import Recommendation, format_table, recommend

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
