"""A fast start: ``import epochstore`` and the light commands load no heavy module.

Counted, not timed: each check runs in a fresh interpreter and lists which heavy modules ended
up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "dash", "plotly", "zarr", "xarray", "dask", "distributed", "matplotlib")


def _heavy_modules_after(code: str) -> list[str]:
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_epochstore_loads_nothing_heavy() -> None:
    assert _heavy_modules_after("import epochstore; epochstore.__version__") == []


def test_help_loads_nothing_heavy() -> None:
    code = (
        "import contextlib, io\n"
        "from epochstore.cli import main\n"
        "for argv in (['--help'], ['analyze', '--help'], ['serve', '--help'], "
        "['bench', '--help'], ['report', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)"
    )
    assert _heavy_modules_after(code) == []


def test_reading_a_store_needs_no_torch_dash_or_plotly(tmp_path: Path) -> None:
    import numpy as np

    from epochstore import ArtifactStore

    ArtifactStore(tmp_path / "run").write_epoch("probe", 0, {"x": np.arange(3.0)})
    code = (
        "from epochstore import ArtifactLoader\n"
        f"loader = ArtifactLoader({str(tmp_path / 'run')!r})\n"
        "loader.load_epochs('probe')['x'].values"
    )
    loaded = _heavy_modules_after(code)
    assert not {"torch", "dash", "plotly"} & set(loaded)


@pytest.mark.parametrize("command", ["ls", "info"])
def test_ls_and_info_load_no_torch_dash_or_plotly(command: str, tmp_path: Path) -> None:
    import numpy as np

    from epochstore import ArtifactStore
    from epochstore.run import Variant, write_variant

    run = tmp_path / "runs" / "one"
    write_variant(run, Variant("somefamily", {"seed": 0}))
    ArtifactStore(run).write_epoch("probe", 0, {"x": np.arange(3.0)})
    target = run if command == "info" else tmp_path / "runs"
    code = (
        "import contextlib, io\n"
        "from epochstore.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main([{command!r}, {str(target)!r}]) == 0"
    )
    loaded = _heavy_modules_after(code)
    assert not {"torch", "dash", "plotly"} & set(loaded)


def test_a_familys_declared_views_load_no_torch() -> None:
    # `epochstore serve` loads each shown run's family for its views: that must stay light.
    code = (
        "from epochstore.plugins import get_family\n"
        "assert [v.name for v in get_family('modadd').views()][:2] == ['dominant', 'heatmap']"
    )
    assert "torch" not in _heavy_modules_after(code)


def test_ls_of_a_run_of_artifacts_alone_loads_no_torch_dash_or_plotly(tmp_path: Path) -> None:
    import numpy as np

    from epochstore import ArtifactStore

    ArtifactStore(tmp_path / "runs" / "mine").write_epoch("probe", 0, {"x": np.arange(3.0)})
    code = (
        "import contextlib, io\n"
        "from epochstore.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['ls', {str(tmp_path / 'runs')!r}]) == 0\n"
        "row = out.getvalue().splitlines()[1].split()\n"
        "assert row[:4] == ['mine', '-', '0', '1'], out.getvalue()"
    )
    loaded = _heavy_modules_after(code)
    assert not {"torch", "dash", "plotly"} & set(loaded)


def test_discovering_families_imports_no_torch() -> None:
    code = (
        "from epochstore.plugins import family_names\n"
        "names = family_names()\n"
        "assert {'modadd', 'modadd_mlp', 'torch'} <= set(names), names"
    )
    assert _heavy_modules_after(code) == []
