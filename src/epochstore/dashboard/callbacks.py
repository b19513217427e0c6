"""The dashboard's callbacks as plain functions: values in, values out, no Dash needed.

:mod:`epochstore.dashboard.app` wires each of them to components; tests call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go

from epochstore.dashboard.service import DashboardService, RunState
from epochstore.interface import Scope
from epochstore.location import is_url

__all__ = [
    "MAX_LABELLED_MARKS",
    "PAGES",
    "compare_view",
    "epoch_label",
    "opened_variant",
    "page_styles",
    "peer_choices",
    "peer_overlay",
    "peer_scatter",
    "pickers",
    "run_options",
    "select_run",
    "selected_epoch",
    "selection",
    "slider_props",
    "variant_table",
    "view_figures",
]

#: At most this many slider marks carry a label; the others are unlabelled ticks.
MAX_LABELLED_MARKS: Final = 9

_HIDDEN: Final = {"display": "none"}
_SHOWN: Final = {"display": "block"}


def run_options(service: DashboardService) -> list[dict[str, str]]:
    """Picker options for every run under the root: ``{"label", "value"}`` (metadata only)."""
    return [{"label": entry.label, "value": entry.path} for entry in service.runs()]


def select_run(
    service: DashboardService, run: str | None, current: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The state of the picked run, from metadata only; ``None`` when nothing changed.

    Called when a variant is picked and on every refresh tick, so epochs written by a running
    pipeline appear without a restart. Returning ``None`` (the app turns it into
    ``no_update``) keeps a refresh that found nothing new from redrawing every panel.
    """
    state = service.describe(run).to_dict()
    return None if current is not None and dict(current) == state else state


def _marks(epochs: Sequence[int]) -> dict[int, str]:
    step = max(1, -(-len(epochs) // MAX_LABELLED_MARKS))
    shown = {*range(0, len(epochs), step), len(epochs) - 1}
    if len(epochs) > 1 and len(epochs) - 1 - max(shown - {len(epochs) - 1}) < step / 2:
        # Keep the last label from crowding the one before it.
        shown.discard(max(shown - {len(epochs) - 1}))
    return {i: str(epochs[i]) for i in sorted(shown)}


def slider_props(
    state: Mapping[str, Any] | None, selected: int | None
) -> tuple[int, int, dict[int, str], int | None, bool]:
    """The epoch slider of a run: ``(min, max, marks, value, disabled)``.

    The slider moves over the *positions* of the run's epochs (``0 .. n - 1``, step 1), so
    the keyboard and the mouse only ever stop at an epoch that exists; the marks are labelled
    with epochs. The selected epoch is kept when the run has it (new epochs arriving, or a
    variant with the same schedule picked); otherwise the slider goes to the nearest epoch, or
    to the last one when nothing was selected.
    """
    epochs = list(RunState.from_dict(state).epochs)
    if not epochs:
        return 0, 1, {}, None, True
    if selected is None:
        index = len(epochs) - 1
    else:
        index = min(range(len(epochs)), key=lambda i: (abs(epochs[i] - selected), epochs[i]))
    return 0, len(epochs) - 1, _marks(epochs), index, False


def selected_epoch(state: Mapping[str, Any] | None, index: int | None) -> int | None:
    """The epoch at slider position ``index`` (``None`` when the run has none)."""
    epochs = RunState.from_dict(state).epochs
    if index is None or not epochs:
        return None
    return int(epochs[min(max(int(index), 0), len(epochs) - 1)])


def epoch_label(state: Mapping[str, Any] | None, epoch: int | None) -> str:
    """``"epoch 1400 (31 of 95)"`` for the slider's side."""
    epochs = list(RunState.from_dict(state).epochs)
    if epoch is None or epoch not in epochs:
        return ""
    return f"epoch {epoch}  ({epochs.index(epoch) + 1} of {len(epochs)})"


def _name(run: str, root: str | None) -> str:
    if not run or root is None:
        return run
    if is_url(root) or is_url(run):
        prefix = root.rstrip("/") + "/"
        return run.removeprefix(prefix)
    try:
        relative = Path(run).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return run
    return str(relative)


def compare_view(
    state_a: Mapping[str, Any] | None,
    state_b: Mapping[str, Any] | None,
    root: str | None = None,
) -> tuple[str, str, str, dict[str, str], dict[str, str]]:
    """Status line, column titles and visibility.

    Column titles are the runs' paths relative to ``root`` when they lie under it.

    Returns
    -------
    tuple
        ``(status, title_a, title_b, style_b, columns_style)``.
    """
    a, b = RunState.from_dict(state_a), RunState.from_dict(state_b)
    status = a.message if not b.run else f"{a.message}  |  {b.message}"
    two = bool(b.run)
    columns = {"display": "grid", "gap": "16px",
               "gridTemplateColumns": "1fr 1fr" if two else "1fr"}
    return (status, _name(a.run, root), _name(b.run, root), _SHOWN if two else _HIDDEN,
            columns)


def pickers(state_a: Mapping[str, Any] | None,
            state_b: Mapping[str, Any] | None) -> dict[str, int]:
    """The pickers to show: each picked dim of either run's views and its largest index
    (the smaller run's, so one index is valid in both)."""
    sizes: dict[str, int] = {}
    for state in (RunState.from_dict(state_a), RunState.from_dict(state_b)):
        for dim, size in state.picks.items():
            sizes[dim] = min(size, sizes.get(dim, size))
    return {dim: size - 1 for dim, size in sorted(sizes.items())}


def _index(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def selection(dims: Sequence[Any], values: Sequence[Any]) -> dict[str, int]:
    """The pickers' values as ``{dim: index}``; an empty or bad value is 0.

    ``dims`` are the pickers' ids (``{"type": "pick", "dim": d}``) or plain dim names.
    """
    names = [d["dim"] if isinstance(d, Mapping) else str(d) for d in dims]
    return {name: _index(value) for name, value in zip(names, values, strict=False)}


def view_figures(
    service: DashboardService,
    state: Mapping[str, Any] | None,
    scope: Scope,
    epoch: int | None,
    picked: Mapping[str, int] | None = None,
    *,
    names: Sequence[str] | None = None,
    nearest: bool = False,
) -> list[go.Figure]:
    """The figures of one column's views of ``scope`` (default: all of them, in order).

    Per-epoch views read only ``epoch`` (or, with ``nearest``, the second variant's nearest
    epoch), and only what each view shows; cross-epoch views mark ``epoch``.
    """
    run = RunState.from_dict(state)
    chosen = run.view_names(scope) if names is None else list(names)
    return service.view_figures(run, chosen, epoch, picked, nearest=nearest)


# --- the pages: a run, the variant table, peer comparison ------------------------------------

#: Each page's path.
PAGES: Final = {"run": "/", "variants": "/variants", "peers": "/peers"}


def page_styles(pathname: str | None) -> tuple[dict[str, str], ...]:
    """The display style of each page (in :data:`PAGES` order) for the URL's path."""
    shown = pathname if pathname in PAGES.values() else PAGES["run"]
    return tuple(_SHOWN if path == shown else _HIDDEN for path in PAGES.values())


def variant_table(service: DashboardService) -> tuple[list[dict[str, Any]],
                                                      list[dict[str, Any]],
                                                      list[dict[str, Any]]]:
    """The variant table: ``(rows, records, columns)`` from the runs' summaries (no chunk)."""
    from epochstore.viz.peers import variant_columns, variant_records

    rows = service.variant_rows()
    return rows, variant_records(rows, service.root), variant_columns(rows)


def opened_variant(cell: Mapping[str, Any] | None) -> str | None:
    """The run of a clicked table cell (its ``row_id``), or ``None``."""
    if not cell or cell.get("row_id") is None:
        return None
    return str(cell["row_id"])


def _members(rows: Sequence[Mapping[str, Any]], family: str | None) -> list[Mapping[str, Any]]:
    return [r for r in rows if r["family"] == family]


def peer_choices(service: DashboardService, rows: Sequence[Mapping[str, Any]],
                 family: str | None) -> dict[str, Any]:
    """The peer page's options for ``family``: its variants, series, swept params, values.

    Returns
    -------
    dict
        ``families``, ``variants``, ``series``, ``params``, ``values``: dropdown options
        (``{"label", "value"}``) each; a series' value is ``"source/series"``.
    """
    from epochstore.viz.peers import summary_keys, variant_label

    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row["family"])] = counts.get(str(row["family"]), 0) + 1
    members = _members(rows, family)
    runs = [str(r["run"]) for r in members]
    sources = service.peer_sources(runs, members) if members else []
    return {
        "families": [{"label": f"{f} ({n} runs)", "value": f} for f, n in counts.items()],
        "variants": [{"label": variant_label(r["swept"]) if r["swept"] else _name(
            str(r["run"]), service.root), "value": str(r["run"])} for r in members],
        "series": [{"label": f"{s} / {f}", "value": f"{s}/{f}"} for s, f in sources],
        "params": [{"label": k, "value": k}
                   for k in sorted({k for r in members for k in r["swept"]})],
        "values": [{"label": k, "value": k} for k in summary_keys(members)],
    }


def peer_overlay(service: DashboardService, rows: Sequence[Mapping[str, Any]],
                 family: str | None, series: str | None,
                 chosen: Sequence[str] | None = None) -> go.Figure:
    """``series`` (``"source/name"``) of the chosen variants of ``family``, overlaid."""
    from epochstore.viz import message_figure
    from epochstore.viz.peers import peer_overlay as overlay

    members = _members(rows, family)
    if chosen is not None:
        members = [r for r in members if r["run"] in chosen]
    if not members or not series:
        return message_figure("Pick a family, a series and some variants.")
    source, _, name = series.partition("/")
    keys = sorted({k for r in members for k in r["swept"]})
    params = {k: [r["swept"].get(k) for r in members] for k in keys}
    runs = [str(r["run"]) for r in members]
    array, stale = service.peer_series(runs, source, name, params)
    names = {str(r["run"]): _name(str(r["run"]), service.root) for r in members}
    return overlay(array, stale=stale, names=names, title=f"{family}: {source} / {name}")


def peer_scatter(rows: Sequence[Mapping[str, Any]], family: str | None, x: str | None,
                 y: str | None, color: str | None = None) -> go.Figure:
    """A summary value ``y`` of ``family``'s variants against swept parameter ``x``."""
    from epochstore.viz import message_figure
    from epochstore.viz.peers import peer_scatter as scatter

    members = _members(rows, family)
    if not members or not x or not y:
        return message_figure("Pick a swept parameter and a summary value.")
    return scatter(members, x, y, color=color if color and color != x else None,
                   title=f"{family}: {y} against {x}")
