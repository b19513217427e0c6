"""Pick a codec and chunking from measured rows, by a stated rule, and print the table.

The rule (:func:`recommend`): among the epochstore variants, keep those whose whole-epoch read
is at least ``npz_speedup`` (2x) faster than per-epoch ``.npz`` (``np.savez_compressed``, the
design epochstore replaces; the bar of issue 6) and whose one-row read is within
``row_tolerance`` (2x) of the fastest variant's; of those, take the smallest on disk. Sizes
within 2% of each other count as equal, and then the faster whole-epoch read wins.

Why not "within 1.5x of the fastest whole-epoch read": the fastest is almost always an
uncompressed single chunk (a memcpy behind zarr's fixed costs), and every compressed, chunked
variant then fails, so that rule recommends no compression on any data that has a
decompression cost, however much it saves. Without a ``.npz`` row the rule falls back to
``full_tolerance`` (1.5x) times the fastest whole-epoch read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from epochstore.bench.compare import BenchRow

__all__ = ["Recommendation", "format_table", "recommend"]


@dataclass(frozen=True)
class Recommendation:
    """The chosen variant and why.

    Attributes
    ----------
    row
        The chosen variant.
    reason
        The rule, with the figures that decided it.
    candidates
        Names of the variants that passed the speed conditions.
    """

    row: BenchRow
    reason: str
    candidates: tuple[str, ...]

    def code(self, field: str, shape: Sequence[int]) -> str:
        """Python that writes with the recommended codec and chunking."""
        codec = self.row.codec or {}
        args = f"cname={codec.get('cname')!r}"
        if codec.get("cname") is not None:
            args += f", clevel={codec.get('clevel')}, shuffle={codec.get('shuffle')!r}"
        text = f"ArtifactStore(run, codec=Codec({args}))"
        if self.row.chunking and not self.row.chunking.startswith("default") and shape:
            chunks = (self.row.rows_per_chunk, *shape[1:])
            text += f"; write_epoch(..., chunks={{{field!r}: {chunks}}})"
        return text


def _ok(value: float) -> bool:
    return not math.isnan(value)


def recommend(
    rows: Sequence[BenchRow],
    *,
    npz_speedup: float = 2.0,
    row_tolerance: float = 2.0,
    full_tolerance: float = 1.5,
) -> Recommendation:
    """Choose the smallest epochstore variant whose reads are fast enough.

    Parameters
    ----------
    rows
        Measured rows (:func:`~epochstore.bench.compare.compare`); only ``kind ==
        "epochstore"`` rows are candidates.
    npz_speedup
        A candidate's whole-epoch read must be at least this many times faster than the
        per-epoch ``.npz`` row's.
    row_tolerance
        A candidate's one-row read may take at most this times the fastest one's (ignored for
        0-d fields, which have no rows).
    full_tolerance
        Used only when there is no ``.npz`` row: a candidate's whole-epoch read may take at most
        this times the fastest one's.

    Returns
    -------
    Recommendation
        The chosen row and the reason. When no variant passes, the fastest whole-epoch read.
    """
    es = [r for r in rows if r.kind == "epochstore"]
    if not es:
        raise ValueError("no epochstore rows to choose from")
    npz = next((r for r in rows if r.kind == "npz" and _ok(r.full_s)), None)
    fastest_full = min(r.full_s for r in es)
    if npz is not None:
        full_bar = npz.full_s / npz_speedup
        full_text = (
            f"whole-epoch read at least {npz_speedup:g}x faster than per-epoch .npz "
            f"(<= {full_bar * 1e3:.1f} ms"
        )
    else:
        full_bar = full_tolerance * fastest_full
        full_text = (
            f"whole-epoch read within {full_tolerance:g}x of the fastest "
            f"(<= {full_bar * 1e3:.1f} ms"
        )
    with_rows = [r.row_s for r in es if _ok(r.row_s)]
    fastest_row = min(with_rows) if with_rows else math.nan

    def passes(r: BenchRow) -> bool:
        if r.full_s > full_bar:
            return False
        return not (_ok(fastest_row) and _ok(r.row_s) and r.row_s > row_tolerance * fastest_row)

    passing = [r for r in es if passes(r)]
    if not passing:
        best = min(es, key=lambda r: r.full_s)
        reason = (
            f"no variant has a {full_text}) and a one-row read within {row_tolerance:g}x of "
            "the fastest: this is the fastest whole-epoch read"
        )
        return Recommendation(best, reason, ())
    smallest = min(r.bytes for r in passing)
    tied = [r for r in passing if r.bytes <= smallest * 1.02]
    best = min(tied, key=lambda r: r.full_s)
    reason = (
        f"smallest on disk ({best.ratio:.2f}x compression) of the {len(passing)} of {len(es)} "
        f"variants with a {full_text}; this one {best.full_s * 1e3:.1f} ms)"
    )
    if _ok(fastest_row):
        reason += (
            f" and a one-row read within {row_tolerance:g}x of the fastest "
            f"(<= {row_tolerance * fastest_row * 1e3:.2f} ms; this one {best.row_s * 1e3:.2f} ms)"
        )
    return Recommendation(best, reason, tuple(r.name for r in passing))


def _ms(seconds: float) -> str:
    if not _ok(seconds):
        return "-"
    ms = seconds * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def format_table(
    rows: Sequence[BenchRow],
    recommendation: Recommendation | None = None,
    *,
    current: str | None = None,
) -> str:
    """Return a plain-text table of ``rows`` (``*`` marks the recommendation).

    Parameters
    ----------
    rows
        Measured rows.
    recommendation
        Marked with ``*`` in the first column.
    current
        Name of the row matching the run's current codec and chunking, marked ``=``.
    """
    header = (
        "variant",
        "MB",
        "files",
        "ratio",
        "write MB/s",
        "full ms",
        "x npy",
        "npz/this",
        "row ms",
        "across ms",
    )
    npy = next((r for r in rows if r.kind == "npy"), None)
    npz = next((r for r in rows if r.kind == "npz"), None)
    body = []
    for r in rows:
        mark = " "
        if current is not None and r.name == current:
            mark = "="
        if recommendation is not None and r.name == recommendation.row.name:
            mark = "*"
        body.append(
            (
                f"{mark} {r.label}",
                f"{r.bytes / 1e6:.2f}",
                str(r.files),
                f"{r.ratio:.2f}",
                f"{r.write_mbps:.0f}",
                _ms(r.full_s),
                f"{r.full_s / npy.full_s:.1f}" if npy else "-",
                f"{npz.full_s / r.full_s:.1f}" if npz else "-",
                _ms(r.row_s),
                _ms(r.across_s),
            )
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(b) for b in body]
    return "\n".join(lines)
