# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore a run
#
# Open a trained and analysed run, look at what is stored, read one neuron across every epoch
# without loading the rest, reduce over epochs in bounded memory, draw figures, and compare two
# checkpoints.
#
# Make the demo run first (`epochstore demo`, a few minutes on 2 cores), or point `RUN` at any
# run directory (or URL) that `epochstore analyze` has filled. The test suite runs this notebook
# against a small run (`tests/examples/test_notebook.py`), so it stays in step with the API.
# This file is the [jupytext](https://jupytext.readthedocs.io) twin of `explore_a_run.ipynb`:
# edit either and sync with `jupytext --sync examples/explore_a_run.ipynb`.

# %%
import pandas as pd
import plotly.graph_objects as go

from epochstore import ArtifactLoader, CheckpointManager
from epochstore.viz import checkpoint_metrics, render_loss_curves

# %% tags=["parameters"]
RUN = "runs/modadd/demo"

# %% [markdown]
# ## What the run holds
#
# `ArtifactLoader` is read-only. Listing analyzers and epochs reads metadata only (a listing
# and each analyzer's manifest), never an array chunk.

# %%
loader = ArtifactLoader(RUN)
for name in loader.get_available_analyzers():
    epochs = loader.get_epochs(name)
    print(f"{name:<24} {len(epochs):>3} epochs  {epochs[0]}..{epochs[-1]}")

# %%
manifest = loader.manifest("neuron_activations")
for field, spec in manifest.fields.items():
    print(field, spec.dims, spec.shape, spec.dtype)

# %% [markdown]
# ## One neuron across all epochs, lazily
#
# `load_epochs` stacks every epoch along a leading `epoch` dimension without reading anything.
# Each epoch's array is its own chunk per neuron, so selecting one neuron reads one small
# chunk per epoch, not the whole `(neuron, a, b)` block.

# %%
lazy = loader.load_epochs("neuron_activations")
activations = lazy["activations"]
print(activations.dims, activations.shape, f"{activations.nbytes / 1e6:.1f} MB if loaded")

neuron = 7
one_neuron = activations.sel(neuron=neuron).values  # reads neuron 7's chunk in each epoch
print(one_neuron.shape, f"{one_neuron.nbytes / 1e6:.2f} MB read")

# %% [markdown]
# ## A reduction over epochs in bounded memory
#
# Dask streams the reduction chunk by chunk: memory holds a few chunks at a time, however many
# epochs the run has. Here: how spread out each neuron's activations are over the `(a, b)` grid,
# at every epoch, and the fraction of neurons that ever fire.

# %%
spread = activations.std(dim=("a", "b"))  # lazy: (epoch, neuron)
spread = spread.compute()
ever_fires = float((activations.max(dim=("epoch", "a", "b")) > 0).mean())
print(spread.dims, spread.shape)
print(f"{ever_fires:.0%} of the neurons fire on some input at some epoch")

# %% [markdown]
# ## Figures
#
# `epochstore.viz` renderers take the xarray data and return plotly figures (the dashboard
# uses the same ones). Checkpoint metrics come from the checkpoint manifest alone.

# %%
metrics = checkpoint_metrics(RUN)
assert metrics is not None, f"{RUN} has no checkpoint metrics"
render_loss_curves(metrics, epoch=int(metrics.epoch[-1]))

# %% [markdown]
# Any stored field is plain xarray data, so plotly draws it directly: neuron 7's activation
# spread over training, next to the average over all neurons.

# %%
fig = go.Figure()
fig.add_scatter(x=spread.epoch, y=spread.sel(neuron=neuron), name=f"neuron {neuron}")
fig.add_scatter(x=spread.epoch, y=spread.mean("neuron"), name="mean over neurons")
fig.update_layout(
    title="Activation spread over the (a, b) grid",
    xaxis_title="epoch",
    yaxis_title="std over (a, b)",
    height=350,
)
fig.show()

# %% [markdown]
# ## Compare two checkpoints
#
# `CheckpointManager` lists committed checkpoints and their metrics from its manifest; loading
# a checkpoint verifies its checksum first.

# %%
manager = CheckpointManager(checkpoint_dir=f"{RUN}/checkpoints", read_only=True)
records = manager.records()
first, last = records[0], records[-1]
pd.DataFrame({f"epoch {r.epoch}": dict(r.metrics) for r in (first, last)})

# %%
before = manager.load(first.epoch, include_optimizer=False)["model"]
after = manager.load(last.epoch, include_optimizer=False)["model"]
pd.DataFrame(
    {
        "norm before": {k: float(v.norm()) for k, v in before.items()},
        "norm after": {k: float(after[k].norm()) for k in before},
        "distance": {k: float((after[k] - v).norm()) for k, v in before.items()},
    }
)
