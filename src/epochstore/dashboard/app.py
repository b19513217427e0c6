"""The Dash app: three pages (by URL path): a run's views (a variant picker, one epoch
slider, pickers), the variant table, and peer comparison.

Layout and wiring only; what each callback computes is in
:mod:`epochstore.dashboard.callbacks` (plain functions over :class:`DashboardService`).

The panels are not fixed: when a run is picked, its column is filled with one graph per view
(pattern-matching ids ``{"type": scope, "column": c, "view": name}``, each in a box with the
plain id ``"{c}-{name}"``), and one picker appears per picked dim (``{"type": "pick", "dim":
d}`` in a box ``"pick-{d}"``). Each page is a layout function of the service and its callbacks:
``_run_page``, ``_variants_page`` (a sortable table; a row opens the variant on the run page)
and ``_peers_page`` (overlay and scatter); all stay in the page, shown or hidden by path, so
each keeps its state.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Final

from dash import ALL, Dash, Input, Output, State, dcc, html, no_update

from epochstore.dashboard import callbacks
from epochstore.dashboard.service import PANEL_HEIGHT, DashboardService, RunState
from epochstore.interface import Scope
from epochstore.viz import message_figure

__all__ = ["COLUMNS", "SCOPES", "create_app", "graph_id"]

#: The two side-by-side columns: ``a`` is the picked variant, ``b`` the optional comparison.
COLUMNS: Final = ("a", "b")
#: Per-epoch views first, then the cross-epoch ones: one flow, so rows fill up.
SCOPES: Final[tuple[Scope, Scope]] = ("epoch", "across")

_GRAPH_CONFIG: Final[Any] = {"displaylogo": False, "responsive": True}
_PANEL_GRID: Final = {
    "display": "grid",
    "gridTemplateColumns": "repeat(auto-fill, minmax(440px, 1fr))",
    "gap": "12px",
}
_BOX: Final = {"border": "1px solid #e5e9f0", "borderRadius": "6px"}
_STALE: Final = {"background": "#fff3cd", "color": "#7a5b00", "fontSize": "12px",
                  "padding": "3px 8px", "borderRadius": "6px 6px 0 0"}
_NAV: Final = {"marginRight": "14px", "fontWeight": "bold"}
_PAGE: Final = {"fontFamily": "Helvetica, Arial, sans-serif", "margin": "12px 20px",
                "color": "#2a3f5f"}


def graph_id(column: str, view: str) -> str:
    """The id of the box holding a view's graph: ``"a-heatmap"``, ``"b-loss"``, ..."""
    return f"{column}-{view}"


def _graph(column: str, view: dict[str, Any], stale: str = "") -> html.Div:
    placeholder = message_figure("Loading...", title=str(view["title"]))
    graph = dcc.Graph(id={"type": view["scope"], "column": column, "view": view["name"]},
                      figure=placeholder, config=_GRAPH_CONFIG,
                      style={"height": f"{PANEL_HEIGHT}px"})
    if not stale:
        return html.Div(graph, id=graph_id(column, str(view["name"])), style=_BOX)
    badge = html.Div(stale, className="stale-badge", style=_STALE)
    return html.Div([badge, graph], id=graph_id(column, str(view["name"])), style=_BOX)


def view_boxes(column: str, state: RunState) -> list[html.Div]:
    """One box per view of the run, per-epoch views first; a view reading stale epochs
    (computed by an older analyzer version) carries a badge saying how many."""
    return [_graph(column, dict(v), state.stale_note(v.get("analyzers", ())))
            for scope in SCOPES for v in state.views if v["scope"] == scope]


def _column(column: str) -> html.Div:
    return html.Div(
        [
            html.H3(id=f"title-{column}", style={"margin": "4px 0 8px", "fontSize": "15px"}),
            html.Div(id=f"views-{column}", style=_PANEL_GRID),
            dcc.Store(id=f"names-{column}"),
        ],
        id=f"column-{column}",
        style={"display": "block" if column == "a" else "none", "minWidth": 0},
    )


def _picker(dim: str, high: int, value: Any) -> html.Div:
    return html.Div(
        [html.Label(dim.replace("_", " ").capitalize()),
         dcc.Input(id={"type": "pick", "dim": dim}, type="number", min=0, max=high, step=1,
                   value=value, debounce=True, style={"width": "90px", "height": "34px"})],
        id=f"pick-{dim}", style={"flex": "0 0 110px"})


def _controls(service: DashboardService) -> html.Div:
    options = callbacks.run_options(service)
    return html.Div(
        [
            html.Div([html.Label("Variant"),
                      dcc.Dropdown(id="run-a", options=options,
                                   placeholder="Pick a family / variant")],
                     style={"flex": "3", "minWidth": "260px"}),
            html.Div([html.Label("Compare with (same slider epoch)"),
                      dcc.Dropdown(id="run-b", options=options, placeholder="optional")],
                     style={"flex": "3", "minWidth": "260px"}),
            html.Div(id="pickers", style={"display": "flex", "gap": "12px"}),
            dcc.Store(id="pick-dims"),
        ],
        style={"display": "flex", "gap": "16px", "alignItems": "flex-end", "flexWrap": "wrap"},
    )


def create_app(
    root: str | os.PathLike[str],
    *,
    service: DashboardService | None = None,
    refresh_seconds: float = 3.0,
    storage_options: Mapping[str, Any] | None = None,
    warm: bool = True,
) -> Dash:
    """Build the dashboard for the runs under ``root``.

    Parameters
    ----------
    root
        The directory whose runs (directories with ``variant.json`` or an ``artifacts/``
        store) the picker lists, or a URL (``"s3://bucket/runs"``).
    service
        The server side (default: a :class:`DashboardService` on ``root``).
    refresh_seconds
        How often the page re-lists runs and epochs (metadata only), so a run being analysed
        shows its new epochs without a restart.
    storage_options
        fsspec options for a URL root (endpoint, credentials); for the default service only.
    warm
        Pay the process's one-time drawing costs (imports, plotly's validators) in a
        background thread now (:meth:`DashboardService.start_warm_up`), not in the first
        panels a user waits for.

    Returns
    -------
    dash.Dash
        The app; ``app.run(host=..., port=...)`` serves it, ``app.server`` is the Flask app.

    Raises
    ------
    ValueError
        If both ``service`` and ``storage_options`` are given (the service has its own), or
        ``storage_options`` are given for a local root.
    """
    if service is not None and storage_options is not None:
        raise ValueError("create_app: give storage_options to the DashboardService you pass "
                         "(DashboardService(root, storage_options=...)), not to create_app")
    service = service or DashboardService(root, storage_options=storage_options)
    app = Dash(__name__, title="epochstore", update_title="")
    # A function, so every page load lists the runs as they are now.
    app.layout = lambda: _layout(service, refresh_seconds)
    _wire(app, service)
    if warm:
        service.start_warm_up()
    return app


def _variants_page() -> html.Div:
    from dash import dash_table

    # Dash 4 announces DataTable's move out of the built-in components (to dash-ag-grid) with
    # a DeprecationWarning per construction; it is still Dash's own sortable table.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        table = dash_table.DataTable(  # type: ignore[attr-defined]
            id="variants-table", data=[], columns=[], sort_action="native",
            style_cell={"fontFamily": "Helvetica, Arial, sans-serif", "fontSize": "13px",
                        "padding": "4px 8px", "textAlign": "left", "cursor": "pointer"},
            style_header={"fontWeight": "bold", "background": "#f5f7fa"},
            style_data_conditional=[{"if": {"filter_query": "{stale} > 0",
                                            "column_id": "stale"},
                                     "backgroundColor": "#fff3cd"}])
    return html.Div(
        [html.P("One row per run, from its summary. Click a header to sort, a row to open "
                "that variant.", style={"color": "#777"}), table],
        id="page-variants", style={"display": "none"})


def _peers_page() -> html.Div:
    def pick(label: str, id_: str, flex: str = "1", **kwargs: Any) -> html.Div:
        return html.Div([html.Label(label), dcc.Dropdown(id=id_, **kwargs)],
                        style={"flex": flex, "minWidth": "200px"})

    row = {"display": "flex", "gap": "16px", "alignItems": "flex-end", "flexWrap": "wrap",
           "margin": "8px 0"}
    return html.Div(
        [
            html.Div([pick("Family", "peer-family", clearable=False),
                      pick("Series", "peer-series", "2", clearable=False),
                      pick("Variants", "peer-runs", "3", multi=True)], style=row),
            html.Div(dcc.Graph(id="peer-overlay", config=_GRAPH_CONFIG,
                               style={"height": f"{PANEL_HEIGHT}px"}), style=_BOX),
            html.Div([pick("Summary value", "peer-y", "2", clearable=False),
                      pick("against", "peer-x", clearable=False),
                      pick("colour by", "peer-color")], style=row),
            html.Div(dcc.Graph(id="peer-scatter", config=_GRAPH_CONFIG,
                               style={"height": f"{PANEL_HEIGHT}px"}), style=_BOX),
        ],
        id="page-peers", style={"display": "none"})


def _layout(service: DashboardService, refresh_seconds: float) -> html.Div:
    service.forget_summaries()  # a page load sees every run as it is now
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div([html.H2("epochstore", style={"margin": "0 12px 0 0"}),
                      dcc.Link("Run", href=callbacks.PAGES["run"], id="nav-run", style=_NAV),
                      dcc.Link("Variants", href=callbacks.PAGES["variants"], id="nav-variants",
                               style=_NAV),
                      dcc.Link("Peers", href=callbacks.PAGES["peers"], id="nav-peers",
                               style=_NAV),
                      html.Span(f"runs under {service.root}", style={"color": "#777"})],
                     style={"display": "flex", "alignItems": "baseline"}),
            html.Div(_run_page(service), id="page-run"),
            _variants_page(),
            _peers_page(),
            dcc.Store(id="variant-rows"),
            dcc.Interval(id="refresh", interval=int(refresh_seconds * 1000)),
        ],
        style=_PAGE,
    )


def _run_page(service: DashboardService) -> list[Any]:
    return [
            _controls(service),
            html.Div(id="status", style={"margin": "10px 0", "padding": "8px 10px",
                                         "background": "#f5f7fa", "borderRadius": "6px"}),
            html.Div(
                [html.Div("Epoch", style={"fontWeight": "bold", "marginRight": "10px"}),
                 html.Div(dcc.Slider(id="epoch", min=0, max=1, step=1, marks={}, value=None,
                                     disabled=True, included=False, allow_direct_input=False),
                          style={"flex": "1"}),
                 html.Div(id="epoch-label", style={"marginLeft": "12px", "minWidth": "90px"})],
                style={"display": "flex", "alignItems": "center", "margin": "8px 0 16px"},
            ),
            html.Div([_column(c) for c in COLUMNS], id="columns",
                     style={"display": "grid", "gridTemplateColumns": "1fr", "gap": "16px"}),
            # The views' graphs arrive with a run; one hidden graph from the start makes the
            # page fetch plotly.js while the user picks a run, not after.
            dcc.Graph(id="preload-plotly", style={"display": "none"}),
            dcc.Store(id="selected"),
            dcc.Store(id="state-a"),
            dcc.Store(id="state-b"),
    ]


def _wire(app: Dash, service: DashboardService) -> None:
    @app.callback(Output("run-a", "options"), Output("run-b", "options"),
                  Input("refresh", "n_intervals"), prevent_initial_call=True)
    def _runs(_: Any) -> tuple[Any, Any]:
        options = callbacks.run_options(service)
        return options, options

    _wire_pages(app, service)
    for column in COLUMNS:
        @app.callback(Output(f"state-{column}", "data"),
                      Input(f"run-{column}", "value"), Input("refresh", "n_intervals"),
                      State(f"state-{column}", "data"))
        def _state(run: str | None, _: Any, current: dict[str, Any] | None) -> Any:
            state = callbacks.select_run(service, run, current)
            return no_update if state is None else state

    @app.callback(Output("epoch", "min"), Output("epoch", "max"), Output("epoch", "marks"),
                  Output("epoch", "value"), Output("epoch", "disabled"),
                  Input("state-a", "data"), State("selected", "data"))
    def _slider(state: dict[str, Any] | None, selected: int | None) -> tuple[Any, ...]:
        return callbacks.slider_props(state, selected)

    @app.callback(Output("selected", "data"), Input("epoch", "value"), State("state-a", "data"))
    def _selected(index: int | None, state: dict[str, Any] | None) -> int | None:
        return callbacks.selected_epoch(state, index)

    @app.callback(Output("status", "children"), Output("title-a", "children"),
                  Output("title-b", "children"), Output("column-b", "style"),
                  Output("columns", "style"),
                  Input("state-a", "data"), Input("state-b", "data"))
    def _view(a: dict[str, Any] | None, b: dict[str, Any] | None) -> tuple[Any, ...]:
        return callbacks.compare_view(a, b, root=service.root)

    @app.callback(Output("pickers", "children"), Output("pick-dims", "data"),
                  Input("state-a", "data"), Input("state-b", "data"),
                  State("pick-dims", "data"), State({"type": "pick", "dim": ALL}, "id"),
                  State({"type": "pick", "dim": ALL}, "value"))
    def _pickers(a: dict[str, Any] | None, b: dict[str, Any] | None, shown: Any,
                 ids: list[Any], values: list[Any]) -> tuple[Any, ...]:
        wanted = callbacks.pickers(a, b)
        if shown == wanted:  # same pickers: keep them (and what was picked)
            return no_update, no_update
        current = callbacks.selection(ids, values)
        return [_picker(d, high, current.get(d, 0)) for d, high in wanted.items()], wanted

    @app.callback(Output("epoch-label", "children"), Input("selected", "data"),
                  State("state-a", "data"))
    def _label(epoch: int | None, state: dict[str, Any] | None) -> str:
        return callbacks.epoch_label(state, epoch)

    for column in COLUMNS:
        @app.callback(Output(f"views-{column}", "children"), Output(f"names-{column}", "data"),
                      Input(f"state-{column}", "data"), State(f"names-{column}", "data"),
                      State(f"views-{column}", "children"))
        def _boxes(state: dict[str, Any] | None, names: Any, boxes: Any,
                   column: str = column) -> tuple[Any, ...]:
            run = RunState.from_dict(state)
            wanted = [run.run, [v["name"] for v in run.views],
                      [run.stale_note(v.get("analyzers", ())) for v in run.views]]
            if names == wanted and boxes:  # same run, same views: keep the graphs
                return no_update, no_update
            return view_boxes(column, run), wanted

        for scope in SCOPES:
            nearest = column != "a" and scope == "epoch"

            @app.callback(
                Output({"type": scope, "column": column, "view": ALL}, "figure"),
                Input("selected", "data"), Input({"type": "pick", "dim": ALL}, "value"),
                Input(f"state-{column}", "data"),
                State({"type": scope, "column": column, "view": ALL}, "id"),
                State({"type": "pick", "dim": ALL}, "id"),
            )
            def _figures(epoch: int | None, values: list[Any], state: dict[str, Any] | None,
                         ids: list[dict[str, str]], dims: list[Any], scope: Scope = scope,
                         nearest: bool = nearest) -> list[Any]:
                picked = callbacks.selection(dims, values)
                return callbacks.view_figures(service, state, scope, epoch, picked,
                                              names=[i["view"] for i in ids], nearest=nearest)


def _wire_pages(app: Dash, service: DashboardService) -> None:
    """The pages (by URL path), the variant table and peer comparison."""
    @app.callback(Output("page-run", "style"), Output("page-variants", "style"),
                  Output("page-peers", "style"), Input("url", "pathname"))
    def _page(path: str | None) -> tuple[Any, ...]:
        return callbacks.page_styles(path)

    @app.callback(Output("variant-rows", "data"), Output("variants-table", "data"),
                  Output("variants-table", "columns"),
                  Input("url", "pathname"), Input("refresh", "n_intervals"),
                  State("variant-rows", "data"))
    def _table(path: str | None, _: Any, current: Any) -> tuple[Any, ...]:
        if path not in (callbacks.PAGES["variants"], callbacks.PAGES["peers"]):
            return no_update, no_update, no_update
        rows, records, columns = callbacks.variant_table(service)
        if rows == current:  # nothing new: keep the table (and its sort)
            return no_update, no_update, no_update
        return rows, records, columns

    @app.callback(Output("run-a", "value"), Output("url", "pathname"),
                  Input("variants-table", "active_cell"), prevent_initial_call=True)
    def _open(cell: Any) -> tuple[Any, Any]:
        run = callbacks.opened_variant(cell)
        return (no_update, no_update) if run is None else (run, callbacks.PAGES["run"])

    @app.callback(Output("peer-family", "options"), Output("peer-family", "value"),
                  Input("variant-rows", "data"), State("peer-family", "value"))
    def _families(rows: Any, family: Any) -> tuple[Any, Any]:
        options = callbacks.peer_choices(service, rows or [], None)["families"]
        values = [o["value"] for o in options]
        return options, family if family in values else (values[0] if values else None)

    @app.callback(Output("peer-series", "options"), Output("peer-series", "value"),
                  Output("peer-runs", "options"), Output("peer-runs", "value"),
                  Output("peer-x", "options"), Output("peer-x", "value"),
                  Output("peer-y", "options"), Output("peer-y", "value"),
                  Output("peer-color", "options"),
                  Input("peer-family", "value"), State("variant-rows", "data"),
                  State("peer-series", "value"), State("peer-x", "value"),
                  State("peer-y", "value"))
    def _choices(family: Any, rows: Any, series: Any, x: Any, y: Any) -> tuple[Any, ...]:
        found = callbacks.peer_choices(service, rows or [], family)

        def keep(options: list[dict[str, Any]], value: Any, index: int = 0) -> Any:
            values = [o["value"] for o in options]
            return value if value in values else (values[index] if len(values) > index
                                                   else None)

        return (found["series"], keep(found["series"], series), found["variants"],
                [o["value"] for o in found["variants"]], found["params"],
                keep(found["params"], x), found["values"], keep(found["values"], y),
                found["params"])

    @app.callback(Output("peer-overlay", "figure"),
                  Input("peer-family", "value"), Input("peer-series", "value"),
                  Input("peer-runs", "value"), Input("variant-rows", "data"))
    def _overlay(family: Any, series: Any, chosen: Any, rows: Any) -> Any:
        return callbacks.peer_overlay(service, rows or [], family, series, chosen)

    @app.callback(Output("peer-scatter", "figure"),
                  Input("peer-family", "value"), Input("peer-x", "value"),
                  Input("peer-y", "value"), Input("peer-color", "value"),
                  Input("variant-rows", "data"))
    def _scatter(family: Any, x: Any, y: Any, color: Any, rows: Any) -> Any:
        return callbacks.peer_scatter(rows or [], family, x, y, color)
