"""Views of a run's artifacts, drawn with plotly.

Every stored field is drawn from its manifest alone (:func:`default_views`: a scalar as a curve
over epochs, a 1-D field as bars at the epoch and an epoch x dim heatmap, ...); a model family
adds its own views (:func:`run_views` puts a run's views together). Views read through a
:class:`RunSource`, only what they draw. :func:`~epochstore.viz.report.write_report` puts every
view of a run in one HTML page. ``render_loss_curves`` and ``render_accuracy_curves`` draw
metrics over epochs; the figure toolkit they share is :mod:`epochstore.figures`.

The renderers of one family's analyzers (``render_neuron_heatmap``, ...) moved to that family
(``epochstore.families.<family>.plots``); their old names here still work, with a
``DeprecationWarning``.
"""

import importlib
import warnings
from typing import Any

# Names load on first use (see epochstore/__init__.py); __init__.pyi lists them.
import lazy_loader

_getattr, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

#: Deprecated names: renderers that moved into the family whose analyzers they draw.
_MOVED = dict.fromkeys(
    ("render_attention_pattern", "render_dominant_frequencies", "render_key_frequency_norms",
     "render_neuron_dominant_frequency", "render_neuron_freq_matrix", "render_neuron_grid",
     "render_neuron_heatmap", "render_progress_measures"),
    "epochstore.families.modadd.plots",
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(f"epochstore.viz.{name} moved to {_MOVED[name]}.{name}; the old name "
                      "will be removed", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    return _getattr(name)
