"""The Dash app: a variant picker, one epoch slider, pickers, and each run's views.

Layout and wiring only; what each callback computes is in
:mod:`epochstore.dashboard.callbacks` (plain functions over :class:`DashboardService`).

The panels are not fixed: when a run is picked, its column is filled with one graph per view
(pattern-matching ids ``{"type": scope, "column": c, "view": name}``, each in a box with the
plain id ``"{c}-{name}"``), and one picker appears per picked dim (``{"type": "pick", "dim":
d}`` in a box ``"pick-{d}"``). A page is a function of the service (:func:`_layout`); another
page (e.g. a table of variants) would be another layout function and its callbacks.
"""

from __future__ import annotations

import os
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
_PAGE: Final = {"fontFamily": "Helvetica, Arial, sans-serif", "margin": "12px 20px",
                "color": "#2a3f5f"}


def graph_id(column: str, view: str) -> str:
    """The id of the box holding a view's graph: ``"a-heatmap"``, ``"b-loss"``, ..."""
    return f"{column}-{view}"


def _graph(column: str, view: dict[str, Any]) -> html.Div:
    placeholder = message_figure("Loading...", title=str(view["title"]))
    graph = dcc.Graph(id={"type": view["scope"], "column": column, "view": view["name"]},
                      figure=placeholder, config=_GRAPH_CONFIG,
                      style={"height": f"{PANEL_HEIGHT}px"})
    return html.Div(graph, id=graph_id(column, str(view["name"])), style=_BOX)


def view_boxes(column: str, state: RunState) -> list[html.Div]:
    """One box per view of the run, per-epoch views first."""
    return [_graph(column, dict(v)) for scope in SCOPES for v in state.views
            if v["scope"] == scope]


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
) -> Dash:
    """Build the dashboard for the runs under ``root``.

    Parameters
    ----------
    root
        The directory whose runs (directories with ``variant.json`` or an ``artifacts/``
        store) the picker lists.
    service
        The server side (default: a :class:`DashboardService` on ``root``).
    refresh_seconds
        How often the page re-lists runs and epochs (metadata only), so a run being analysed
        shows its new epochs without a restart.

    Returns
    -------
    dash.Dash
        The app; ``app.run(host=..., port=...)`` serves it, ``app.server`` is the Flask app.
    """
    service = service or DashboardService(root)
    app = Dash(__name__, title="epochstore", update_title="")
    # A function, so every page load lists the runs as they are now.
    app.layout = lambda: _layout(service, refresh_seconds)
    _wire(app, service)
    return app


def _layout(service: DashboardService, refresh_seconds: float) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("epochstore", style={"margin": "0 12px 0 0"}),
                      html.Span(f"runs under {service.root}", style={"color": "#777"})],
                     style={"display": "flex", "alignItems": "baseline"}),
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
            dcc.Interval(id="refresh", interval=int(refresh_seconds * 1000)),
        ],
        style=_PAGE,
    )


def _wire(app: Dash, service: DashboardService) -> None:
    @app.callback(Output("run-a", "options"), Output("run-b", "options"),
                  Input("refresh", "n_intervals"), prevent_initial_call=True)
    def _runs(_: Any) -> tuple[Any, Any]:
        options = callbacks.run_options(service)
        return options, options

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
            wanted = [run.run, [v["name"] for v in run.views]]
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
