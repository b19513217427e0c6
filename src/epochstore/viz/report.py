"""A static report: the main figures of a run in one self-contained HTML page.

For people without a server: plotly.js is inlined once, every figure follows as a ``div``, and
the page opens from disk with no network.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from epochstore._version import __version__
from epochstore.errors import EpochstoreError
from epochstore.run import read_variant
from epochstore.store import ArtifactLoader
from epochstore.viz.attention import render_attention_pattern
from epochstore.viz.curves import render_accuracy_curves, render_loss_curves
from epochstore.viz.evolution import render_key_frequency_norms, render_neuron_dominant_frequency
from epochstore.viz.freq_matrix import render_neuron_freq_matrix
from epochstore.viz.frequencies import render_dominant_frequencies
from epochstore.viz.neurons import render_neuron_grid, render_neuron_heatmap
from epochstore.viz.progress import render_progress_measures
from epochstore.viz.sources import checkpoint_metrics

__all__ = ["report_figures", "report_html", "write_report"]

Section = tuple[str, go.Figure]


def _final_epoch(loader: ArtifactLoader, analyzers: Sequence[str]) -> int | None:
    # The last epoch every per-epoch analyzer has: the most trained state shown consistently.
    common: set[int] | None = None
    for name in analyzers:
        epochs = set(loader.get_epochs(name))
        common = epochs if common is None else common & epochs
    return max(common) if common else None


def report_figures(
    run: str | os.PathLike[str], *, epoch: int | None = None, neuron: int = 0
) -> tuple[list[Section], list[str]]:
    """Build the report's figures for ``run``.

    Parameters
    ----------
    run
        The run directory.
    epoch
        The epoch of the per-epoch figures and the marker of the cross-epoch ones; default the
        last epoch that every per-epoch analyzer has.
    neuron
        The neuron of the heatmap and of the dominant-frequency history.

    Returns
    -------
    sections
        ``(heading, figure)`` pairs, in page order.
    notes
        What was left out and why (e.g. an analyzer the run does not have).
    """
    loader = ArtifactLoader(run)
    have = loader.get_available_analyzers()
    per_epoch = [a for a in ("dominant_frequencies", "neuron_activations", "neuron_freq_norm")
                 if a in have and loader.get_epochs(a)]
    if epoch is None:
        epoch = _final_epoch(loader, per_epoch)
    sections: list[Section] = []
    notes: list[str] = []

    def add(heading: str, analyzer: str, build: Callable[[], go.Figure]) -> None:
        if analyzer not in have or not loader.get_epochs(analyzer):
            notes.append(f"{heading}: the run has no {analyzer!r} artifacts")
            return
        try:
            sections.append((heading, build()))
        except (EpochstoreError, KeyError, IndexError, ValueError) as exc:
            notes.append(f"{heading}: {exc}")

    metrics = loader.load_epochs("training_metrics") if "training_metrics" in have else None
    if metrics is None or not metrics.sizes.get("epoch"):
        metrics = checkpoint_metrics(run)
    if metrics is not None:
        sections.append(("Loss", render_loss_curves(metrics, epoch)))
        sections.append(("Accuracy", render_accuracy_curves(metrics, epoch)))
    else:
        notes.append("Loss and accuracy: no training_metrics artifacts and no checkpoint metrics")
    add("Progress measures", "progress_measures",
        lambda: render_progress_measures(loader.load_epochs("progress_measures"), epoch))
    keys = None
    if "progress_measures" in have:
        stored = loader.manifest("progress_measures").params.get("key_frequencies")
        keys = [int(k) for k in stored] if isinstance(stored, list) else None
    add("Key-frequency norms", "dominant_frequencies",
        lambda: render_key_frequency_norms(loader.load_epochs("dominant_frequencies"), epoch,
                                           key_frequencies=keys))
    add(f"Neuron {neuron} over training", "neuron_freq_norm",
        lambda: render_neuron_dominant_frequency(loader.load_epochs("neuron_freq_norm"), epoch,
                                                 neuron=neuron))
    if epoch is None:
        notes.append("Per-epoch figures: no epoch is analysed by every per-epoch analyzer yet")
        return sections, notes
    add(f"Dominant frequencies, epoch {epoch}", "dominant_frequencies",
        lambda: render_dominant_frequencies(loader.load_epoch("dominant_frequencies", epoch),
                                            epoch))
    add(f"Neuron {neuron}, epoch {epoch}", "neuron_activations",
        lambda: render_neuron_heatmap(loader.load_epoch("neuron_activations", epoch), epoch,
                                      neuron=neuron))
    add(f"Neuron grid, epoch {epoch}", "neuron_activations",
        lambda: render_neuron_grid(loader.load_epoch("neuron_activations", epoch), epoch))
    add(f"Neuron-frequency clusters, epoch {epoch}", "neuron_freq_norm",
        lambda: render_neuron_freq_matrix(loader.load_epoch("neuron_freq_norm", epoch), epoch))
    if "attention_patterns" in have:
        add(f"Attention patterns, epoch {epoch}", "attention_patterns",
            lambda: render_attention_pattern(loader.load_epoch("attention_patterns", epoch),
                                             epoch))
    return sections, notes


_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; color: #2a3f5f; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; }
h1 { margin-bottom: 4px; } .meta { color: #666; font-size: 13px; }
section { border: 1px solid #e5e9f0; border-radius: 6px; margin: 18px 0; padding: 8px; }
code { background: #f5f7fa; padding: 1px 4px; border-radius: 3px; }
"""


def report_html(
    run: str | os.PathLike[str], *, epoch: int | None = None, neuron: int = 0
) -> str:
    """Return the report of ``run`` as one self-contained HTML document (plotly.js inlined once).

    Parameters are those of :func:`report_figures`.
    """
    sections, notes = report_figures(run, epoch=epoch, neuron=neuron)
    try:
        variant = read_variant(run)
        family, params = variant.family, json.dumps(dict(variant.params), sort_keys=True)
    except (OSError, EpochstoreError):
        family, params = "?", "{}"
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
) -> Path:
    """Write :func:`report_html` of ``run`` to ``output`` (atomically); return the path."""
    from epochstore.location import atomic_write_bytes

    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(os.fspath(path), report_html(run, epoch=epoch, neuron=neuron).encode())
    return path
