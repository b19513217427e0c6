"""Sphinx configuration of the API reference (built from the docstrings; see api/README.md).

Build: ``sphinx-build -W -n --keep-going -b html docs docs/_build/html`` (what ``.ci/run``
does): warnings are errors, and ``-n`` (nitpicky) makes every unresolved cross-reference one,
so a renamed class or a broken ``:func:`` link fails CI.
"""

from __future__ import annotations

from typing import Any

from epochstore import __version__

project = "epochstore"
author = "epochstore developers"
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinxarg.ext",
]

# The Markdown pages (design.md, format.md, ...) are read on GitHub; the site is the reference.
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "**/*.md"]

autodoc_default_options = {"member-order": "bysource"}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Offline build (no intersphinx inventories): names from other libraries cannot resolve, so
# nitpicky mode checks epochstore's own references and ignores theirs.
nitpicky = True
# The dashboard is an app, not an API (being rewritten): documented in docs/dashboard.md.
nitpick_ignore = [("py:mod", "epochstore.dashboard")]
nitpick_ignore_regex = [
    (r"py:.*", (r"(torch|numpy|np|xarray|xr|zarr|dask|distributed|fsspec|plotly|go|dash|pathlib"
                r"|os|collections|typing|concurrent|multiprocessing|datetime|enum|json|io|abc"
                r"|tqdm)(\..*)?")),
    (r"py:.*", r".*\._[A-Za-z].*"),  # private helpers are not part of the reference
    (r"py:.*", (r"(optional|callable|iterable|mapping|sequence|scalar|array-like|default.*"
                r"|int|float|str|bool|bytes|dict|list|tuple|set|object|None|Any|type|path-like)")),
]



def _public_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference by the name the reference documents its target under.

    Each public class is documented once, under its public name (``epochstore.ArtifactLoader``,
    ``epochstore.interface.ModelFamily``); docstrings may name it by a module path
    (``epochstore.store.reader.ArtifactLoader.load_epochs``), a re-export
    (``epochstore.families.ModelFamily``) or bare (``ModAddConfig``).
    """
    import epochstore

    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    parts = node["reftarget"].lstrip("~.").split(".")
    candidates = []
    for i, part in enumerate(parts):
        if part in epochstore.__all__ and (i == 0 or parts[0] == "epochstore"):
            candidates.append(".".join(["epochstore", *parts[i:]]))
    if parts[-1][:1].isupper():  # a class: unique by its name in this package
        matches = [name for name in domain.objects if name.endswith("." + ".".join(parts[-1:]))]
        candidates += matches if len(matches) == 1 else []
    for target in candidates:
        if target != node["reftarget"] and target in domain.objects:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
            )
    return None


def setup(app: Any) -> None:
    app.connect("missing-reference", _public_alias)


html_theme = "alabaster"
html_title = f"epochstore {release}"
