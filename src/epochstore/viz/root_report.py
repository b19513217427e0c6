"""A static report of many runs: the variant table and each family's peer comparisons.

``epochstore report ROOT -o page.html`` on a root (a directory holding runs): one table row per
run (from the runs' summaries), then per family every checkpoint metric overlaid for all its
variants, and each event against each swept parameter. Self-contained like the report of one
run (``epochstore.viz.report``): plotly.js inlined once, no network.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from epochstore._version import __version__
from epochstore.viz.peers import (
    peer_overlay,
    peer_scatter,
    summary_keys,
    summary_value,
    variant_columns,
    variant_records,
)

__all__ = ["root_report_figures", "root_report_html", "write_root_report"]

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; color: #2a3f5f; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; }
h1 { margin-bottom: 4px; } .meta { color: #666; font-size: 13px; }
section { border: 1px solid #e5e9f0; border-radius: 6px; margin: 18px 0; padding: 8px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e9f0; padding: 4px 8px; text-align: left; }
td.stale { background: #fff3cd; }
"""


def _families(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    families: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        families.setdefault(str(row["family"]), []).append(row)
    return families


def root_report_figures(
    rows: Sequence[Mapping[str, Any]],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> list[tuple[str, go.Figure]]:
    """The peer figures of ``epochstore.variant_table`` rows, family by family.

    Per family: each checkpoint metric of its runs overlaid (read from the checkpoint
    manifests), then each event reached by some variant against each swept parameter.

    Returns
    -------
    list of (heading, figure)
    """
    from epochstore.summary import peer_series

    sections: list[tuple[str, go.Figure]] = []
    for family, members in _families(rows).items():
        runs = [str(r["run"]) for r in members]
        metrics = sorted({k for r in members for k in r.get("final_metrics", {})})
        for metric in metrics:
            series = peer_series(runs, "metrics", metric, storage_options=storage_options)
            title = f"{family} / {metric}"
            sections.append((title, peer_overlay(series, title=title)))
        swept = sorted({k for r in members for k in r.get("swept", {})})
        events = [k for k in summary_keys(members) if k.startswith("events.")
                  and any(summary_value(r, k) is not None for r in members)]
        for event in events:
            for param in swept:
                others = [p for p in swept if p != param]
                fig = peer_scatter(members, param, event, color=others[0] if others else None,
                                   title=f"{family}: {event} against {param}")
                sections.append((f"{family}: {event} against {param}", fig))
    return sections


def _table(rows: Sequence[Mapping[str, Any]], root: str) -> str:
    columns = variant_columns(rows)
    head = "".join(f"<th>{html.escape(c['name'])}</th>" for c in columns)
    body = []
    for record in variant_records(rows, root):
        cells = []
        for c in columns:
            value = record.get(c["id"])
            marked = ' class="stale"' if c["id"] == "stale" and value else ""
            shown = "-" if value is None else str(value)
            cells.append(f"<td{marked}>{html.escape(shown)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def root_report_html(
    root: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> str:
    """Return the report of every run under ``root`` as one self-contained HTML page.

    Raises
    ------
    FileNotFoundError
        If ``root`` holds no run.
    """
    from epochstore.summary import variant_table

    location = os.fspath(root)
    rows = variant_table(location, storage_options=storage_options)
    if not rows:
        raise FileNotFoundError(f"{location} holds no run (no directory with variant.json or "
                                "an artifacts/ store); give a run or a root of runs")
    parts = []
    for i, (heading, fig) in enumerate(root_report_figures(rows,
                                                           storage_options=storage_options)):
        body = pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0),
                           config={"displaylogo": False}, default_width="100%")
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>epochstore report: {html.escape(location)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(location)}</h1>"
        f"<p class=\"meta\">{len(rows)} runs; epochstore {__version__}, {stamp}</p>"
        f"<section><h2>Variants</h2>{_table(rows, location)}</section>"
        + "".join(parts)
        + "</body></html>\n"
    )


def write_root_report(
    root: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``root_report_html`` of ``root`` to ``output`` (atomically); return the path."""
    from epochstore.location import atomic_write_bytes

    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = root_report_html(root, storage_options=storage_options)
    atomic_write_bytes(os.fspath(path), page.encode())
    return path
