"""The Dash app: a variant picker, one epoch slider, per-epoch and cross-epoch panels.

Layout and wiring only; what each callback computes is in
:mod:`epochstore.dashboard.callbacks` (plain functions over :class:`DashboardService`).
"""

from __future__ import annotations

import os
from typing import Any, Final

from dash import Dash, Input, Output, State, dcc, html, no_update

from epochstore.dashboard import callbacks
from epochstore.dashboard.service import (
    CROSS_PANELS,
    EPOCH_PANELS,
    PANEL_HEIGHT,
    PANEL_TITLES,
    DashboardService,
)
from epochstore.viz import message_figure

__all__ = ["COLUMNS", "create_app", "graph_id"]

#: The two side-by-side columns: ``a`` is the picked variant, ``b`` the optional comparison.
COLUMNS: Final = ("a", "b")

_GRAPH_CONFIG: Final[Any] = {"displaylogo": False, "responsive": True}
_PANEL_GRID: Final = {
    "display": "grid",
    "gridTemplateColumns": "repeat(auto-fill, minmax(440px, 1fr))",
    "gap": "12px",
}
_BOX: Final = {"border": "1px solid #e5e9f0", "borderRadius": "6px"}
_PAGE: Final = {"fontFamily": "Helvetica, Arial, sans-serif", "margin": "12px 20px",
                "color": "#2a3f5f"}


def graph_id(column: str, panel: str) -> str:
    """The id of a panel's ``dcc.Graph``: ``"a-heatmap"``, ``"b-loss"``, ..."""
    return f"{column}-{panel}"


def _graph(column: str, panel: str) -> html.Div:
    placeholder = message_figure("Pick a variant above.", title=PANEL_TITLES[panel])
    graph = dcc.Graph(id=graph_id(column, panel), figure=placeholder, config=_GRAPH_CONFIG,
                      style={"height": f"{PANEL_HEIGHT}px"})
    hidden = {"display": "none"} if panel == "attention" else {}
    return html.Div(graph, id=f"{graph_id(column, panel)}-box", style={**_BOX, **hidden})


def _column(column: str) -> html.Div:
    return html.Div(
        [
            html.H3(id=f"title-{column}", style={"margin": "4px 0 8px", "fontSize": "15px"}),
            # Per-epoch panels first, then the cross-epoch ones: one flow, so rows fill up.
            html.Div([_graph(column, p) for p in (*EPOCH_PANELS, *CROSS_PANELS)],
                     style=_PANEL_GRID),
        ],
        id=f"column-{column}",
        style={"display": "block" if column == "a" else "none", "minWidth": 0},
    )


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
            html.Div([html.Label("Neuron"),
                      dcc.Input(id="neuron", type="number", min=0, step=1, value=0,
                                debounce=True, style={"width": "90px", "height": "34px"})],
                     style={"flex": "0 0 110px"}),
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
        The directory whose runs (directories with ``variant.json``) the picker lists.
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
                  Output("columns", "style"), Output("neuron", "max"),
                  Input("state-a", "data"), Input("state-b", "data"))
    def _view(a: dict[str, Any] | None, b: dict[str, Any] | None) -> tuple[Any, ...]:
        return callbacks.compare_view(a, b, root=service.root)

    @app.callback(Output("epoch-label", "children"), Input("selected", "data"),
                  State("state-a", "data"))
    def _label(epoch: int | None, state: dict[str, Any] | None) -> str:
        return callbacks.epoch_label(state, epoch)

    for column in COLUMNS:
        nearest = column != "a"

        @app.callback(
            *(Output(graph_id(column, p), "figure") for p in EPOCH_PANELS),
            Output(f"{graph_id(column, 'attention')}-box", "style"),
            Input("selected", "data"), Input("neuron", "value"), Input(f"state-{column}", "data"),
        )
        def _per_epoch(epoch: int | None, neuron: Any, state: dict[str, Any] | None,
                       nearest: bool = nearest) -> tuple[Any, ...]:
            *figures, attention = callbacks.epoch_panels(service, state, epoch, neuron,
                                                         nearest=nearest)
            return (*figures, _BOX if attention else {"display": "none"})

        @app.callback(
            *(Output(graph_id(column, p), "figure") for p in CROSS_PANELS),
            Input("selected", "data"), Input("neuron", "value"), Input(f"state-{column}", "data"),
        )
        def _cross(epoch: int | None, neuron: Any, state: dict[str, Any] | None) -> tuple[Any, ...]:
            return callbacks.cross_panels(service, state, epoch, neuron)
