"""Sphinx configuration of the skedge documentation.

Build: ``python -m sphinx -b html -W --keep-going docs docs/_build/html``.
No network access is needed (no intersphinx); sphinx-gallery runs every
``examples/plot_*.py`` with matplotlib's Agg backend.
"""

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

HERE = Path(__file__).resolve().parent
# Build from a checkout even when skedge is not installed.
sys.path.insert(0, str(HERE.parent))

import torch

import skedge

# The examples run in this process. Their networks are small: one torch thread
# is as fast as two on an idle machine and several times faster on a busy one
# (measured: 8 s instead of 44 s for the ensemble example on a loaded 2-core box).
torch.set_num_threads(1)

project = "skedge"
author = "the skedge developers"
copyright = "the skedge developers, BSD-3-Clause"
release = skedge.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "profiling.md", "**/*.ipynb", "**/*.py.md5",
                    "auto_examples/*.py", "auto_examples/*.zip"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
language = "en"

# --------------------------------------------------------------- API reference
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
# numpydoc renders the sections; autosummary tables of members would need a
# stub page per method (noise for scikit-learn style estimators).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
# MathJax is loaded from a CDN by the browser that reads the pages; the build
# itself never touches the network.

# Every public name (``__all__``) of these modules gets a page, each object once:
# a name re-exported by several modules is documented where it is listed first.
API_MODULES = [
    ("skedge", "Estimators and top-level functions"),
    ("skedge.spaces", "Design spaces"),
    ("skedge.datasets", "Benchmarks: simulator and real data"),
    ("skedge.devices", "Device features"),
    ("skedge.preprocessing", "Design and device encoders"),
    ("skedge.pipelines", "Standard pipelines"),
    ("skedge.differentiable", "Differentiable predictors"),
    ("skedge.crossdevice", "Cross-device prediction for new devices"),
    ("skedge.adaptation", "One adapted device"),
    ("skedge.fewshot", "Few-shot building blocks"),
    ("skedge.model_selection", "Cross-validation over hardware"),
    ("skedge.optimize", "Design optimization"),
    ("skedge.models", "Runnable networks"),
    ("skedge.measure", "Measuring latency and energy"),
    ("skedge.workflow", "The end-to-end workflow"),
    ("skedge.evaluation", "Evaluating predictors and the optimizer"),
    ("skedge.persistence", "Saving and loading models"),
]


API_INTRO = """\
.. _api:

=============
API reference
=============

Every public name of skedge (each module's ``__all__``), module by module.
The names of the first section are importable straight from ``skedge``
(``from skedge import AccuracyRegressor``); a name that several modules export
is documented once, where it is listed first. All estimators follow the
scikit-learn API: parameters in ``__init__``, ``fit`` / ``predict``, fitted
attributes ending in ``_``, ``get_params`` / ``set_params``; they compose in
:class:`~sklearn.pipeline.Pipeline` and
:class:`~sklearn.model_selection.GridSearchCV`.
"""


def _write_api_page(path):
    """Write the API reference page (autosummary tables) from the modules' ``__all__``."""
    import importlib

    path.parent.mkdir(parents=True, exist_ok=True)
    seen = {}
    lines = [API_INTRO]
    for module_name, title in API_MODULES:
        module = importlib.import_module(module_name)
        own, elsewhere = [], []
        for name in module.__all__:
            if name.startswith("__"):
                continue  # __version__: a string, shown on the front page
            obj = getattr(module, name)
            key = id(obj) if callable(obj) or isinstance(obj, type) else (module_name, name)
            if key in seen:
                elsewhere.append(seen[key])
            else:
                seen[key] = f"{module_name}.{name}"
                own.append(name)
        heading = f"``{module_name}``: {title.lower()}" if module_name != "skedge" else title
        lines += [heading, "=" * len(heading), "", f".. automodule:: {module_name}",
                  "   :no-members:", "", f".. currentmodule:: {module_name}", ""]
        if own:
            lines += [".. autosummary::", "   :toctree: .", "   :nosignatures:", ""]
            lines += [f"   {name}" for name in own] + [""]
        if elsewhere:
            refs = ", ".join(f":obj:`~{full}`" for full in elsewhere)
            lines += [f"``{module_name}`` also provides {refs} (documented above).", ""]
    text = "\n".join(lines)
    if not path.is_file() or path.read_text() != text:  # keep the mtime: no needless rebuilds
        path.write_text(text)


_write_api_page(HERE / "generated" / "api.rst")

# --------------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skedge",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"skedge": None},
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "show_memory": False,
    "plot_gallery": "True",
    # A failing example fails the build (and tests/test_docs.py).
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
    "run_stale_examples": False,
    "download_all_examples": False,
    # No sg_execution_times.rst in the source tree (each example page shows its time).
    "write_computation_times": False,
    "capture_repr": ("_repr_html_", "__repr__"),
}

# Examples emit warnings of third-party libraries (e.g. dask's on shutdown);
# those are not documentation problems.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

# ------------------------------------------------------------------------ html
html_theme = "alabaster"
html_title = f"skedge {release}"
html_static_path = []
html_theme_options = {
    "description": "Scale DNN design optimization to thousands of edge devices",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_show_sourcelink = False
