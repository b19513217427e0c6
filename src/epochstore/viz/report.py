"""A static report: every view of a run in one self-contained HTML page.

For people without a server: plotly.js is inlined once, every figure follows as a ``div``, and
the page opens from disk with no network.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from epochstore._version import __version__
from epochstore.errors import EpochstoreError
from epochstore.interface import View
from epochstore.run import read_variant
from epochstore.viz.run_source import RunSource
from epochstore.viz.views import run_views

__all__ = ["report_figures", "report_html", "write_report"]

Section = tuple[str, go.Figure]

_SHOWN_ERRORS = (EpochstoreError, KeyError, IndexError, ValueError, OSError)


def _family(run: str | os.PathLike[str],
            storage_options: Mapping[str, Any] | None = None) -> str | None:
    try:
        return read_variant(run, storage_options=storage_options).family
    except (OSError, EpochstoreError):
        return None  # a run written with ArtifactStore alone


def _final_epoch(source: RunSource, views: Sequence[View]) -> int | None:
    # The last epoch every per-epoch view can draw: the most trained state shown consistently.
    common: set[int] | None = None
    for view in views:
        if view.scope != "epoch":
            continue
        for name in view.analyzers:
            epochs = set(source.analyzers().get(name, ()))
            common = epochs if common is None else common & epochs
    return max(common) if common else None


def report_figures(
    run: str | os.PathLike[str],
    *,
    epoch: int | None = None,
    neuron: int = 0,
    selection: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[list[Section], list[str]]:
    """Build the report's figures for ``run``: every view of the run (see
    :func:`epochstore.viz.run_views`), cross-epoch ones with ``epoch`` marked.

    Parameters
    ----------
    run
        The run directory: with ``variant.json``, or an ``artifacts/`` store alone.
    epoch
        The epoch of the per-epoch figures and the marker of the cross-epoch ones; default the
        last epoch that every per-epoch view's analyzers have.
    neuron
        Shorthand for ``selection={"neuron": neuron}``.
    selection
        The index picked along each picked dim; a dim not given is 0: the static report shows
        the first slice of a field of 3 or more dims.
    storage_options
        fsspec options for a run URL (``"s3://bucket/runs/mine"``).

    Returns
    -------
    sections
        ``(heading, figure)`` pairs, in page order; the heading is the figure's title.
    notes
        What was left out and why (an epoch not analysed, a family not installed here).
    """
    source = RunSource(run, storage_options=storage_options)
    views, note = run_views(source, _family(run, storage_options),
                            checkpoints=source.checkpoint_metrics() is not None)
    picked = {"neuron": neuron, **dict(selection or {})}
    if epoch is None:
        epoch = _final_epoch(source, views)
    sections: list[Section] = []
    notes = [note] if note else []
    for view in views:
        if view.scope == "epoch":
            missing = [a for a in view.analyzers if epoch not in source.analyzers().get(a, ())]
            if epoch is None or missing:
                notes.append(f"{view.title}: epoch {epoch} of {missing} is not analysed")
                continue
        try:
            fig = view.render(source, epoch, picked)
        except _SHOWN_ERRORS as exc:
            notes.append(f"{view.title}: {exc}")
            continue
        sections.append((str(fig.layout.title.text or view.title), fig))
    return sections, notes


_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; color: #2a3f5f; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; }
h1 { margin-bottom: 4px; } .meta { color: #666; font-size: 13px; }
section { border: 1px solid #e5e9f0; border-radius: 6px; margin: 18px 0; padding: 8px; }
code { background: #f5f7fa; padding: 1px 4px; border-radius: 3px; }
"""


def report_html(
    run: str | os.PathLike[str],
    *,
    epoch: int | None = None,
    neuron: int = 0,
    selection: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Return the report of ``run`` as one self-contained HTML document (plotly.js inlined once).

    Parameters are those of :func:`report_figures`.
    """
    sections, notes = report_figures(run, epoch=epoch, neuron=neuron, selection=selection,
                                     storage_options=storage_options)
    try:
        variant = read_variant(run, storage_options=storage_options)
        family, params = variant.family, json.dumps(dict(variant.params), sort_keys=True)
    except (OSError, EpochstoreError):
        family, params = "none (artifacts only)", "{}"
    parts = []
    for i, (heading, fig) in enumerate(sections):
        body = pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0),
                           config={"displaylogo": False}, default_width="100%")
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    left_out = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>epochstore report: {html.escape(str(run))}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(str(run))}</h1>"
        f"<p class=\"meta\">family <code>{html.escape(family)}</code>, params "
        f"<code>{html.escape(params)}</code><br>epochstore {__version__}, {stamp}</p>"
        + "".join(parts)
        + (f"<h2>Left out</h2><ul>{left_out}</ul>" if left_out else "")
        + "</body></html>\n"
    )


def write_report(
    run: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    epoch: int | None = None,
    neuron: int = 0,
    selection: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`~epochstore.viz.report.report_html` of ``run`` to ``output`` (atomically).

    Return the path.
    """
    from epochstore.location import atomic_write_bytes

    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = report_html(run, epoch=epoch, neuron=neuron, selection=selection,
                       storage_options=storage_options)
    atomic_write_bytes(os.fspath(path), page.encode())
    return path
