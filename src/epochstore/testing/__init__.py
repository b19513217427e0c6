"""Testing helpers shipped with the library (as zarr ships ``zarr.testing``).

:mod:`epochstore.testing.toy` is a tiny model family that trains in milliseconds: use it to test
your own analyzers, executors and tooling against real checkpoints and a real store.
:mod:`epochstore.testing.synthetic_modadd` writes a Modulo Addition run's artifacts (same fields,
dims and dtypes) without training, at any size: for renderers, the dashboard and benchmarks.
"""
