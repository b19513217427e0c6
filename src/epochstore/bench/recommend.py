"""Pick a codec and chunking from measured rows, by a stated rule, and print the table.

The rule (:func:`recommend`): among the epochstore variants, keep those whose whole-epoch read
is within ``full_tolerance`` (1.5x) of the fastest variant's and whose one-row read is within
``row_tolerance`` (2x) of the fastest; of those, take the smallest on disk. Sizes within 1% of
each other count as equal, and the faster whole-epoch read wins.
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
    rows: Sequence[BenchRow], *, full_tolerance: float = 1.5, row_tolerance: float = 2.0
) -> Recommendation:
    """Choose the smallest epochstore variant whose reads are close enough to the fastest.

    Parameters
    ----------
    rows
        Measured rows (:func:`~epochstore.bench.compare.compare`); only ``kind ==
        "epochstore"`` rows are candidates.
    full_tolerance
        A candidate's whole-epoch read may take at most this times the fastest one's.
    row_tolerance
        A candidate's one-row read may take at most this times the fastest one's (ignored for
        0-d fields, which have no rows).

    Returns
    -------
    Recommendation
        The chosen row and the reason.
    """
    es = [r for r in rows if r.kind == "epochstore"]
    if not es:
        raise ValueError("no epochstore rows to choose from")
    fastest_full = min(r.full_s for r in es)
    with_rows = [r.row_s for r in es if _ok(r.row_s)]
    fastest_row = min(with_rows) if with_rows else math.nan

    def passes(r: BenchRow) -> bool:
        if r.full_s > full_tolerance * fastest_full:
            return False
        return not (_ok(fastest_row) and _ok(r.row_s) and r.row_s > row_tolerance * fastest_row)

    candidates = [r for r in es if passes(r)] or [min(es, key=lambda r: r.full_s)]
    smallest = min(r.bytes for r in candidates)
    tied = [r for r in candidates if r.bytes <= smallest * 1.01]
    best = min(tied, key=lambda r: r.full_s)
    reason = (
        f"smallest on disk ({best.ratio:.2f}x compression) among the {len(candidates)} of "
        f"{len(es)} variants whose whole-epoch read is within {full_tolerance:g}x of the "
        f"fastest ({fastest_full * 1e3:.1f} ms; this one {best.full_s * 1e3:.1f} ms)"
    )
    if _ok(fastest_row):
        reason += (
            f" and one-row read within {row_tolerance:g}x of the fastest "
            f"({fastest_row * 1e3:.2f} ms; this one {best.row_s * 1e3:.2f} ms)"
        )
    return Recommendation(best, reason, tuple(r.name for r in candidates))


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
    lines = [
        "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))),
    ]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(b, widths, strict=True))
            )
        )
    return "\n".join(lines)
