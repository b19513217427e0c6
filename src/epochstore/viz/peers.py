"""Peer comparison: many variants of a family in one figure, and the variant table's cells.

Generic: every builder takes what ``epochstore.summary`` returns (the rows of
``epochstore.variant_table``, the ``(run, epoch)`` array of
``epochstore.peer_series``) and names no family. The swept parameters give the
legend and the colours: colour follows the first swept parameter, the line dash the second.
The dashboard and the static report both draw with these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import xarray as xr

from epochstore.figures import figure, message_figure

__all__ = [
    "peer_overlay",
    "peer_scatter",
    "summary_keys",
    "summary_value",
    "variant_columns",
    "variant_label",
    "variant_records",
]

_DASHES: Final = ("solid", "dash", "dot", "dashdot", "longdash")
_PALETTE: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                   "#7f7f7f", "#bcbd22", "#17becf", "#d62728")


def variant_label(swept: Mapping[str, Any]) -> str:
    """``"p=17, seed=1"``: a variant named by its swept parameters (``"-"`` for none)."""
    return ", ".join(f"{k}={v}" for k, v in swept.items()) or "-"


def _colours(values: Sequence[Any]) -> dict[str, str]:
    """A colour per distinct value: a Viridis ramp over numbers, a palette otherwise."""
    distinct = sorted({repr(v): v for v in values}.items(), key=lambda kv: _order(kv[1]))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for _, v in distinct)
    if numeric and len(distinct) > 1:
        ramp = plotly.colors.sample_colorscale("Viridis", len(distinct), low=0.0, high=0.85)
        return {key: ramp[i] for i, (key, _) in enumerate(distinct)}
    return {key: _PALETTE[i % len(_PALETTE)] for i, (key, _) in enumerate(distinct)}


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _log_axis(values: Sequence[float]) -> bool:
    """Log scale for positive values spanning at least two decades."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) >= 100


def peer_overlay(
    series: xr.DataArray,
    *,
    params: Sequence[str] | None = None,
    stale: Mapping[str, Sequence[int]] | None = None,
    title: str | None = None,
    names: Mapping[str, str] | None = None,
    log_y: bool | None = None,
) -> go.Figure:
    """One series of many runs overlaid, aligned by epoch: one trace per run.

    Parameters
    ----------
    series
        Dims ``("run", "epoch")``, the swept parameters as coordinates along ``run`` (what
        ``epochstore.peer_series`` returns). NaN (a run without that epoch) is
        left out of its trace.
    params
        The coordinates naming the runs (default: every coordinate along ``run`` other than
        ``run``). The first gives the colour, the second the line dash.
    stale
        Per run, epochs computed by an older analyzer version: drawn as grey crosses.
    title
        The title (default: the array's name).
    names
        A display name per run, used when the runs have no swept parameter.
    log_y
        Logarithmic y axis (default: when the values are positive over two decades or more).

    Returns
    -------
    plotly.graph_objects.Figure
        One line trace per run, named by its swept parameters, then one trace of stale
        points if any.
    """
    what = title or str(series.name or "series")
    if series.sizes.get("run", 0) == 0:
        return message_figure("No variant to compare.", title=what)
    keys = list(params) if params is not None else [
        str(c) for c in series.coords if c != "run" and series.coords[c].dims == ("run",)]
    runs = [str(r) for r in series["run"].values]
    coords = {k: list(series.coords[k].values.tolist()) for k in keys}
    colour = _colours(coords[keys[0]]) if keys else {}
    dashes = {repr(v): _DASHES[i % len(_DASHES)]
              for i, v in enumerate(sorted(set(coords[keys[1]]), key=_order))} if len(keys) > 1 \
        else {}
    epochs = np.asarray(series["epoch"].values)
    values = np.asarray(series.values, dtype=np.float64)
    traces: list[dict[str, Any]] = []
    stale_x: list[int] = []
    stale_y: list[float] = []
    for i, run in enumerate(runs):
        keep = np.isfinite(values[i])
        swept = {k: coords[k][i] for k in keys}
        short = run.rstrip("/").rsplit("/", 1)[-1]
        name = variant_label(swept) if keys else (names or {}).get(run, short)
        line: dict[str, Any] = {"width": 2}
        if keys:
            line["color"] = colour[repr(swept[keys[0]])]
        if len(keys) > 1:
            line["dash"] = dashes[repr(swept[keys[1]])]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "x": epochs[keep], "y": values[i][keep],
            "name": name, "line": line, "marker": {"size": 4},
            "meta": {"run": run},
            "hovertemplate": f"{name}<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>",
        })
        for epoch in (stale or {}).get(run, ()):
            where = np.nonzero(epochs == epoch)[0]
            if where.size and keep[where[0]]:
                stale_x.append(int(epoch))
                stale_y.append(float(values[i][where[0]]))
    if stale_x:
        traces.append({"type": "scatter", "mode": "markers", "x": stale_x, "y": stale_y,
                       "name": "stale (older analyzer version)",
                       "marker": {"symbol": "x", "size": 9, "color": "#7f7f7f"}})
    log = _log_axis(values[np.isfinite(values)].tolist()) if log_y is None else log_y
    return figure(traces, {
        "title": {"text": f"{what}: {len(runs)} variants"},
        "xaxis": {"title": {"text": "epoch"}},
        "yaxis": {"title": {"text": str(series.name or "")}, "type": "log" if log else "linear"},
        "legend": {"title": {"text": ", ".join(keys)}},
        "meta": {"runs": runs, "params": keys},
    })


def summary_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The summary values rows can be plotted by: ``events.<name>`` then
    ``final_metrics.<name>``, sorted within each."""
    events = sorted({k for r in rows for k in r.get("events", {})})
    metrics = sorted({k for r in rows for k in r.get("final_metrics", {})})
    return [f"events.{e}" for e in events] + [f"final_metrics.{m}" for m in metrics]


def summary_value(row: Mapping[str, Any], key: str) -> float | None:
    """The value of ``key`` (see ``summary_keys``) in a row, ``None`` if missing or NaN."""
    group, _, name = key.partition(".")
    value = row.get(group, {}).get(name) if name else row.get(group)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if not math.isfinite(value) else float(value)


def peer_scatter(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    y: str,
    *,
    color: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """A summary value against a swept parameter: one point per variant.

    Parameters
    ----------
    rows
        ``epochstore.variant_table`` rows (of one family).
    x
        A swept parameter (a key of each row's ``swept``).
    y
        A summary value: ``events.<name>`` or ``final_metrics.<name>``.
    color
        Another swept parameter: one trace (colour) per value of it.
    title
        The title (default ``"<y> against <x>"``).

    Returns
    -------
    plotly.graph_objects.Figure
        One marker trace per value of ``color`` (one trace without it); variants without
        ``y`` (an event not reached) are named in a note under the figure.
    """
    what = title or f"{y} against {x}"
    groups: dict[str, dict[str, list[Any]]] = {}
    missing: list[str] = []
    for row in rows:
        swept = row.get("swept", {})
        value = summary_value(row, y)
        if x not in swept or value is None:
            missing.append(variant_label(swept))
            continue
        key = f"{color}={swept.get(color)}" if color else y
        group = groups.setdefault(key, {"x": [], "y": [], "text": [], "value": []})
        group["x"].append(swept[x])
        group["y"].append(value)
        group["text"].append(variant_label(swept))
        group["value"].append(swept.get(color) if color else None)
    if not groups:
        return message_figure(f"No variant has {y} yet.", title=what)
    colours = _colours([g["value"][0] for g in groups.values()])
    traces = [{
        "type": "scatter", "mode": "markers", "x": g["x"], "y": g["y"], "text": g["text"],
        "name": name, "marker": {"size": 11, "color": colours[repr(g["value"][0])],
                                 "line": {"width": 1, "color": "white"}},
        "hovertemplate": f"%{{text}}<br>{y} %{{y:.4g}}<extra></extra>",
    } for name, g in groups.items()]
    xs = [v for g in groups.values() for v in g["x"]]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs)
    note = f"not reached or not stored: {'; '.join(missing)}" if missing else ""
    return figure(traces, {
        "title": {"text": what},
        "xaxis": {"title": {"text": x},
                  "type": ("log" if numeric and _log_axis([float(v) for v in xs])
                           else "linear" if numeric else "category")},
        "yaxis": {"title": {"text": y}},
        "showlegend": bool(color),
        "annotations": [{"text": note, "x": 0, "y": -0.18, "xref": "paper", "yref": "paper",
                         "xanchor": "left", "showarrow": False,
                         "font": {"size": 11, "color": "#777"}}] if note else [],
        "meta": {"missing": missing},
    })


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.4g}")
    if isinstance(value, int | str | bool) or value is None:
        return value
    return str(value)


def variant_columns(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The variant table's columns: ``{"id", "name", "type"}`` each, in display order.

    Ids of swept parameters, final metrics and events are prefixed (``param:``, ``metric:``,
    ``event:``) so that no name of the data can clash with a fixed column.
    """
    swept = sorted({k for r in rows for k in r.get("swept", {})})
    metrics = sorted({k for r in rows for k in r.get("final_metrics", {})})
    events = sorted({k for r in rows for k in r.get("events", {})})
    return [
        {"id": "name", "name": "run", "type": "text"},
        {"id": "family", "name": "family", "type": "text"},
        *({"id": f"param:{k}", "name": k, "type": "any"} for k in swept),
        {"id": "checkpoints", "name": "ckpts", "type": "numeric"},
        {"id": "analysed", "name": "analysed %", "type": "numeric"},
        {"id": "stale", "name": "stale", "type": "numeric"},
        *({"id": f"metric:{k}", "name": k, "type": "numeric"} for k in metrics),
        *({"id": f"event:{k}", "name": f"{k}@", "type": "numeric"} for k in events),
        {"id": "finished", "name": "done", "type": "text"},
    ]


def variant_records(rows: Sequence[Mapping[str, Any]],
                    root: str | None = None) -> list[dict[str, Any]]:
    """The variant table's records: one per row, keyed by ``variant_columns`` ids.

    ``id`` is the run's location (what opening a variant needs); ``name`` its path relative
    to ``root``. Floats keep 4 significant digits; NaN and missing values are ``None``.
    """
    prefix = root.rstrip("/") + "/" if root else ""
    records = []
    for row in rows:
        run = str(row["run"])
        name = run[len(prefix):] if prefix and run.startswith(prefix) else run
        record: dict[str, Any] = {
            "id": run, "name": name or ".",
            "family": str(row["family"]) + ("" if row.get("installed", True)
                                            else " (not installed)"),
            "checkpoints": row.get("checkpoints"),
            "analysed": round(100 * float(row.get("analysed", 0.0)), 1),
            "stale": row.get("stale", 0),
            "finished": "yes" if row.get("finished") else "no",
        }
        record.update({f"param:{k}": _cell(v) for k, v in row.get("swept", {}).items()})
        record.update({f"metric:{k}": _cell(v) for k, v in row.get("final_metrics", {}).items()})
        record.update({f"event:{k}": _cell(v) for k, v in row.get("events", {}).items()})
        records.append(record)
    return records
