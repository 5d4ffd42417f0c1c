"""Sphinx configuration of the impalpable documentation.

Build with ``make docs`` (HTML in ``docs/_build/html``, warnings are errors). The
example gallery executes every script in ``examples/`` at its ``--small`` size; pass
``-D plot_gallery=0`` to sphinx-build to show the code without running it (the test
suite does this: it runs the examples itself, in ``tests/test_examples.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))
# Examples and docstrings must not compete for the two cores with BLAS threads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import spectra  # noqa: E402

project = "impalpable"
author = "the impalpable authors"
copyright = "2026, the impalpable authors"  # noqa: A001
version = release = spectra.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "impalpable_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# bench/ holds the per-section sources that ``make bench`` assembles into benchmarks.md.
exclude_patterns = ["_build", "_ext", "bench", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.json"]

# ---------------------------------------------------------------- autodoc / numpydoc
autosummary_generate = True
autosummary_imported_members = True
autosummary_ignore_module_all = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# --------------------------------------------------------------------------- MyST
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# ------------------------------------------------------------------ sphinx-gallery
sphinx_gallery_conf = {
    "examples_dirs": "_build/examples_src",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",
    "reset_argv": "impalpable_docs.example_argv",
    "image_scrapers": ("impalpable_docs.png_scraper",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "show_signature": False,
    "abort_on_example_error": True,
}

# --------------------------------------------------------------------------- HTML
html_theme = "alabaster"
html_title = f"impalpable {release}"
html_theme_options = {
    "description": "Spectra of matrices too large to form",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_static_path: list[str] = []
