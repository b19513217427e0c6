"""Modulo Addition's declared views: the panels its dashboard and report show.

Each view reads through a :class:`~epochstore.interface.ViewSource` (never a loader), only what
it draws: the heatmap and the grid share one block of activations (one chunk's read), the
cross-epoch views read their few values per epoch once. The ``neuron`` picker is shared by the
heatmap, the grid and the neuron's dominant frequency over training. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import plotly.graph_objects as go

from epochstore.families.modadd.plots import (
    render_attention_pattern,
    render_dominant_frequencies,
    render_key_frequency_norms,
    render_neuron_dominant_frequency,
    render_neuron_freq_matrix,
    render_neuron_grid,
    render_neuron_heatmap,
    render_progress_measures,
)
from epochstore.figures import line_figure
from epochstore.interface import Scope, View, ViewSource

__all__ = ["GRID_SIZE", "PROGRESS_FIELDS", "ModAddView", "modadd_views"]

#: Neurons in the neuron grid: a block that lies inside the chunk of the chosen neuron.
GRID_SIZE: Final = 16
#: The progress measures drawn (``specialised_neurons`` is left to the neuron views).
PROGRESS_FIELDS: Final = ("restricted_loss", "excluded_loss", "gini_embedding",
                          "gini_neuron_logit", "sum_squared_weights")
LOSS_FIELDS: Final = ("train_loss", "test_loss")
ACCURACY_FIELDS: Final = ("train_accuracy", "test_accuracy")

_ACTS, _FIELD = "neuron_activations", "activations"

Draw = Callable[[ViewSource, "int | None", int], go.Figure]


@dataclass(frozen=True)
class ModAddView:
    """One declared view: a name, what it reads, and how it draws (``draw(source, epoch,
    neuron)``)."""

    name: str
    title: str
    analyzers: tuple[str, ...]
    scope: Scope
    draw: Draw
    picks: tuple[str, ...] = ()

    def render(self, source: ViewSource, epoch: int | None,
               selection: Mapping[str, int]) -> go.Figure:
        """Draw at (or mark) ``epoch``, for the picked neuron (default 0)."""
        return self.draw(source, epoch, int(selection.get("neuron", 0)))


# --- at one epoch --------------------------------------------------------------------------------


def _at(epoch: int | None) -> int:
    # The dashboard and the report call per-epoch views with an epoch the analyzers have.
    if epoch is None:
        raise ValueError("a per-epoch view needs an epoch")
    return epoch


def _dominant(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    epoch = _at(epoch)
    return render_dominant_frequencies(source.load_epoch("dominant_frequencies", epoch), epoch)


def _heatmap(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    epoch = _at(epoch)
    block = source.load_block(_ACTS, epoch, _FIELD, "neuron", neuron, GRID_SIZE)
    return render_neuron_heatmap(block.to_dataset(name=_FIELD), epoch, neuron=neuron)


def _grid(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    epoch = _at(epoch)
    block = source.load_block(_ACTS, epoch, _FIELD, "neuron", neuron, GRID_SIZE)
    shown = block["neuron"].values
    return render_neuron_grid(block.to_dataset(name=_FIELD), epoch,
                              title=f"Neurons {shown[0]}-{shown[-1]} over (a, b), epoch {epoch}")


def _freq_matrix(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    epoch = _at(epoch)
    return render_neuron_freq_matrix(source.load_epoch("neuron_freq_norm", epoch), epoch)


def _attention(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    epoch = _at(epoch)
    return render_attention_pattern(source.load_epoch("attention_patterns", epoch), epoch)


# --- across epochs -------------------------------------------------------------------------------


def _curves(panel: str) -> Draw:
    preferred, word = (LOSS_FIELDS, "loss") if panel == "loss" else (ACCURACY_FIELDS, "acc")

    def draw(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
        # The standard fields when present, else every metric whose name says loss (acc).
        stored = list(source.fields("training_metrics"))
        fields = [f for f in preferred if f in stored] or sorted(f for f in stored if word in f)
        data = source.load_series("training_metrics", fields)
        if panel == "loss":
            return line_figure(data, epoch, fields, title="Loss", yaxis_title="loss", log_y=True)
        return line_figure(data, epoch, fields, title="Accuracy", yaxis_title="accuracy",
                           yrange=(-0.02, 1.02), legend_corner=(0.99, 0.03))

    return draw


def _progress(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    stored = source.fields("progress_measures")
    present = [f for f in PROGRESS_FIELDS if f in stored]
    return render_progress_measures(source.load_series("progress_measures", present), epoch)


def _key_frequencies(source: ViewSource) -> list[int] | None:
    if "progress_measures" not in source.analyzers():
        return None
    stored = source.params("progress_measures").get("key_frequencies")
    return [int(k) for k in stored] if isinstance(stored, list) else None


def _key_norms(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    data = source.load_series("dominant_frequencies", ["frequency_norms"])
    return render_key_frequency_norms(data, epoch, key_frequencies=_key_frequencies(source))


def _neuron_freq(source: ViewSource, epoch: int | None, neuron: int) -> go.Figure:
    count = source.fields("neuron_freq_norm")["dominant_frequency"].shape[0]
    if not 0 <= neuron < count:
        raise IndexError(f"neuron {neuron} is out of range: this run has neurons 0..{count - 1}")
    data = source.load_series("neuron_freq_norm", ["dominant_frequency", "dominant_fraction"],
                              select={"neuron": neuron})
    return render_neuron_dominant_frequency(data, epoch, neuron=neuron)


def modadd_views() -> list[View]:
    """The family's views, per-epoch ones first, in the order the dashboard lays them out."""
    return [
        ModAddView("dominant", "Dominant frequencies", ("dominant_frequencies",), "epoch",
                   _dominant),
        ModAddView("heatmap", "Neuron activation", (_ACTS,), "epoch", _heatmap, ("neuron",)),
        ModAddView("freq_matrix", "Neuron-frequency clusters", ("neuron_freq_norm",), "epoch",
                   _freq_matrix),
        ModAddView("grid", "Neuron grid", (_ACTS,), "epoch", _grid, ("neuron",)),
        ModAddView("attention", "Attention patterns", ("attention_patterns",), "epoch",
                   _attention),
        # Without training_metrics, the loss and accuracy from the checkpoint records (a
        # generic view of the same name) take their place.
        ModAddView("loss", "Loss", ("training_metrics",), "across", _curves("loss")),
        ModAddView("accuracy", "Accuracy", ("training_metrics",), "across",
                   _curves("accuracy")),
        ModAddView("progress", "Progress measures", ("progress_measures",), "across",
                   _progress),
        ModAddView("key_norms", "Key-frequency norms", ("dominant_frequencies",), "across",
                   _key_norms),
        ModAddView("neuron_freq", "Neuron's dominant frequency", ("neuron_freq_norm",),
                   "across", _neuron_freq, ("neuron",)),
    ]
