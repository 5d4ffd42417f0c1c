"""Build helpers of the impalpable documentation (a local Sphinx extension).

Four jobs, the first three done from the sources so that new modules and examples
appear in the docs without editing any page:

* **API pages from** ``__all__``. For each package, a page with the package docstring
  and one autosummary entry per public top-level name, and one page per public
  submodule (not ``_``-prefixed) listing the names of its ``__all__`` that are not
  already documented. The pages are written into ``docs/api/generated/`` (ignored by
  git) when the configuration is read, before autosummary writes its stubs, with the
  toctree of the packages (``packages.inc``, included by ``docs/api/index.rst``). A
  package that cannot be imported is left out (and said so) rather than failing the
  build.
* **Gallery sources.** sphinx-gallery wants a header file inside the examples folder
  and a reST title at the top of each docstring. The examples stay plain scripts: they
  are copied into ``docs/_build/examples_src/`` with a title underline added, and the
  gallery is built from the copies.
* **Running the examples.** Every example takes ``--small --out DIR`` and writes its
  figures as PNG files into ``DIR``. :func:`example_argv` passes those flags when
  sphinx-gallery executes an example, and :func:`png_scraper` puts the PNG files the
  example wrote into the gallery page.
* **MathJax from the site itself.** The pages render their math with MathJax 3, copied
  from the ``django-static-mathjax`` distribution (the ``docs`` extra; it vendors the
  MathJax files and nothing else) into ``_static/mathjax/``, so the built site shows
  its math without a network. Without that distribution the build warns (an error
  under ``-W``) and falls back to Sphinx's CDN address.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import re
import shutil
import types
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
EXAMPLES = ROOT / "examples"
STAGED = DOCS / "_build" / "examples_src"
EXAMPLE_OUT = DOCS / "_build" / "examples_out"
API_OUT = DOCS / "api" / "generated"
#: Folder (relative to ``API_OUT``) of autosummary's one-page-per-object stubs; apart
#: from the module pages, since ``spectra.density`` names both a module and a function.
STUBS = "objects"

PACKAGES = ("spectra", "freedecomp", "hessian", "impalpable")
#: Submodules left out of the API reference (entry points, not library API).
SKIP_MODULES = {"__main__"}

GALLERY_HEADER = """\
Examples
========

Each example is a script that checks its own claims (it asserts its results against
exact references) and writes its figures as PNG files. Run one with

.. code-block:: bash

   python examples/<name>.py [--small] [--out DIR]

``--small`` runs it at the size the test suite uses (seconds); the figures below come
from that size.
"""


# ============================================================================ API pages
def _underline(title: str, char: str = "=") -> str:
    return f"{title}\n{char * len(title)}\n"


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _key(obj: Any, module: str, name: str) -> Any:
    """Identity of a documented object: classes and functions by object, data by name."""
    return id(obj) if _kind(obj) in ("class", "function") else (module, name)


def _autosummary(module: str, names: list[str]) -> str:
    if not names:
        return ""
    body = "\n".join(f"   {n}" for n in names)
    return (f".. currentmodule:: {module}\n\n.. autosummary::\n   :toctree: {STUBS}\n"
            f"   :nosignatures:\n\n{body}\n\n")


def _public_modules(pkg: types.ModuleType) -> list[str]:
    """Public submodule names: those named in ``__all__`` first, then the others."""
    found = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                   if not m.name.startswith("_") and m.name not in SKIP_MODULES)
    listed = [n for n in getattr(pkg, "__all__", [])
              if isinstance(getattr(pkg, n, None), types.ModuleType)]
    return listed + [m for m in found if m not in listed]


def importable(packages: tuple[str, ...] = PACKAGES) -> tuple[str, ...]:
    """The packages of ``packages`` that can be found on the path, in order.

    A package that is absent (``impalpable`` before the application layer exists) is
    left out of the reference; one that is present but fails to import is not hidden:
    :func:`api_pages` then raises its error.
    """
    return tuple(name for name in packages if importlib.util.find_spec(name) is not None)


def packages_toctree(packages: tuple[str, ...]) -> str:
    """The toctree of the package pages, included by ``docs/api/index.rst``."""
    body = "".join(f"   generated/{name}\n" for name in packages)
    return f".. toctree::\n   :maxdepth: 2\n\n{body}"


def api_pages(packages: tuple[str, ...] | None = None) -> dict[str, str]:
    """The reST text of every generated API page, keyed by file stem.

    Each object is documented once: a name exported by the package is documented at
    the package level; a name that several submodules export is documented in the
    module that defines it (``obj.__module__``), else in the first one listed.

    Parameters
    ----------
    packages : tuple of str, optional
        Package names; default: those of :data:`PACKAGES` that exist
        (:func:`importable`).

    Returns
    -------
    dict
        ``{"spectra": "...", "spectra.plot": "...", ...}``.
    """
    pages: dict[str, str] = {}
    for name in importable() if packages is None else packages:
        pkg = importlib.import_module(name)
        top = {n: getattr(pkg, n) for n in getattr(pkg, "__all__", [])}
        seen = {_key(obj, name, n) for n, obj in top.items() if _kind(obj) != "module"}
        modules = {m: importlib.import_module(f"{name}.{m}") for m in _public_modules(pkg)}
        owner: dict[Any, str] = {}
        for m, mod in modules.items():
            for n in getattr(mod, "__all__", []):
                obj = getattr(mod, n, None)
                key = _key(obj, m, n)
                if obj is None or key in seen:
                    continue
                here = getattr(obj, "__module__", None) == mod.__name__
                if key not in owner or here:
                    owner[key] = m
        text = _underline(f"``{name}``") + f"\n.. automodule:: {name}\n\n"
        for kind, title in (("class", "Classes"), ("function", "Functions"),
                            ("data", "Data")):
            names = sorted(n for n, obj in top.items() if _kind(obj) == kind)
            if names:
                text += _underline(title, "-") + "\n" + _autosummary(name, names)
        if modules:
            text += _underline("Modules", "-") + "\n.. toctree::\n   :maxdepth: 1\n\n"
            text += "".join(f"   {name}.{m}\n" for m in modules) + "\n"
        pages[name] = text
        for m, mod in modules.items():
            full = f"{name}.{m}"
            members = [n for n in getattr(mod, "__all__", [])
                       if owner.get(_key(getattr(mod, n, None), m, n)) == m]
            # A module that shares its name with a function of the package (for example
            # ``spectra.density``) gets no module target, which would clash with it.
            clash = m in top and not isinstance(top[m], types.ModuleType)
            page = _underline(f"``{full}``") + f"\n.. automodule:: {full}\n"
            page += "   :no-index:\n\n" if clash else "\n"
            if members:
                page += _underline("Members", "-") + "\n" + _autosummary(full, members)
            else:
                page += (f"Everything public in ``{full}`` is documented at the package "
                         f"level: :doc:`{name}`.\n")
            pages[full] = page
    return pages


def _logger() -> Any:
    from sphinx.util import logging

    return logging.getLogger(__name__)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages(app: Any = None, config: Any = None) -> None:
    """Write :func:`api_pages` into ``docs/api/generated/`` and drop stale files.

    Only changed pages are rewritten (so incremental builds stay incremental). Files
    that are neither a page nor the autosummary stub of a listed object (left behind
    by a name that left ``__all__``) are removed: Sphinx would warn that they are in
    no toctree.
    """
    API_OUT.mkdir(parents=True, exist_ok=True)
    present = importable()
    missing = sorted(set(PACKAGES) - set(present))
    if missing:
        _logger().info(f"API reference: {', '.join(missing)} not found, left out")
    pages = api_pages(present)
    _write_if_changed(API_OUT / "packages.inc", packages_toctree(present))
    stubs = set()
    for stem, text in pages.items():
        module = None
        for line in text.splitlines():
            if line.startswith(".. currentmodule:: "):
                module = line.split("::", 1)[1].strip()
            elif line.startswith(".. toctree::"):
                module = None
            elif module and line.startswith("   ") and not line.strip().startswith(":"):
                stubs.add(f"{module}.{line.strip()}.rst")
        _write_if_changed(API_OUT / f"{stem}.rst", text)
    keep = {f"{stem}.rst" for stem in pages}
    for folder, names in ((API_OUT, keep), (API_OUT / STUBS, stubs)):
        for path in folder.glob("*.rst") if folder.exists() else []:
            if path.name not in names:
                path.unlink()


# ====================================================================== gallery sources
def titled_source(text: str) -> str:
    """Return an example's source with a reST underline under its docstring's first line.

    Parameters
    ----------
    text : str
        Source of an example script that starts with a module docstring.

    Returns
    -------
    str
        The same source; if the docstring's first line was not already underlined, an
        ``=`` underline of its length follows it. Nothing else changes.
    """
    tree = ast.parse(text)
    doc = tree.body[0] if tree.body else None
    if not (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)):
        raise ValueError("an example must start with a module docstring (its title)")
    lines = text.splitlines(keepends=True)
    start = doc.lineno - 1
    first = lines[start]
    quote = first.lstrip()[:3] if first.lstrip()[:3] in ('"""', "'''") else first.lstrip()[:4]
    head, title = first.split(quote, 1)[0] + quote, first.split(quote, 1)[1].rstrip("\n")
    following = lines[start + 1].strip() if start + 1 < len(lines) else ""
    if not title.strip() or (following and set(following) <= set("=-~^*#")):
        return text
    lines[start] = f"{head}{title}\n{'=' * len(title.strip())}\n"
    return "".join(lines)


def stage_examples(app: Any = None, config: Any = None) -> None:
    """Copy ``examples/*.py`` (titled) and a gallery header into the staging folder."""
    STAGED.mkdir(parents=True, exist_ok=True)
    wanted = {"GALLERY_HEADER.rst": GALLERY_HEADER}
    for path in sorted(EXAMPLES.glob("*.py")):
        wanted[path.name] = titled_source(path.read_text())
    for name, text in wanted.items():
        target = STAGED / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    for target in STAGED.iterdir():
        if target.name not in wanted:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()


# =================================================================== running the examples
def _out_dir(src_file: str) -> Path:
    return EXAMPLE_OUT / Path(src_file).stem


def example_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """Command-line arguments of an example run by sphinx-gallery.

    Empties the example's output folder and returns ``--small --out DIR``. The
    example's module docstring is restored in its globals: sphinx-gallery blanks
    ``__doc__``, and the examples build their ``argparse`` description from it.

    Parameters
    ----------
    gallery_conf : dict
        sphinx-gallery configuration.
    script_vars : dict
        The example's execution state (``src_file``, ``example_globals``).

    Returns
    -------
    list of str
    """
    src = script_vars["src_file"]
    out = _out_dir(src)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    doc = ast.get_docstring(ast.parse(Path(src).read_text()), clean=False) or ""
    script_vars.get("example_globals", {})["__doc__"] = doc
    return ["--small", "--out", str(out)]


def png_scraper(block: Any, block_vars: dict, gallery_conf: dict) -> str:
    """Put the PNG files an example wrote into ``--out`` into its gallery page.

    Parameters
    ----------
    block : tuple
        The code block just executed.
    block_vars : dict
        Its state: ``src_file``, ``image_path_iterator``.
    gallery_conf : dict
        sphinx-gallery configuration.

    Returns
    -------
    str
        reST of the new images (empty when the block wrote none).
    """
    from sphinx_gallery.scrapers import figure_rst

    out = _out_dir(block_vars["src_file"])
    images = []
    # A PNG is moved out of ``--out`` once shown, so later blocks show only new ones.
    for png in sorted(out.glob("*.png")) if out.exists() else []:
        target = Path(next(block_vars["image_path_iterator"]))
        shutil.move(png, target)
        images.append(str(target))
    return figure_rst(images, gallery_conf["src_dir"]) if images else ""


# ==================================================================== module docstrings
_CITATION = re.compile(r"\[R([0-9a-f]+-[0-9]+)\]")


def module_references(app: Any, what: str, name: str, obj: Any, options: Any,
                      lines: list[str]) -> None:
    """Give a module docstring's references their own labels and cite them.

    numpydoc makes reference labels unique per object name (``R<hash>-1``), but a
    module and a function may share a name (``spectra.trace``), and module docstrings
    list references without citing them in the text. Their labels get an ``M``
    prefix, and a LaTeX-only line cites them all, as numpydoc does for functions.
    Runs after numpydoc (``autodoc-process-docstring``, priority 600).
    """
    if what != "module":
        return
    text = "\n".join(lines)
    labels = re.findall(r"^\.\. \[R([0-9a-f]+-[0-9]+)\]", text, flags=re.MULTILINE)
    if not labels:
        return
    lines[:] = _CITATION.sub(r"[M\1]", text).split("\n")
    lines += ["", ".. only:: latex", "", "   " + ", ".join(f"[M{lab}]_" for lab in labels), ""]


# ============================================================================== MathJax
#: The distribution that vendors MathJax 3 (the ``docs`` extra) and its ready-built files.
MATHJAX_DIST = "django-static-mathjax"
MATHJAX_BUILD = "mathjax/static/mathjax/es5"
#: The page script, relative to the site's ``_static`` folder (Sphinx's ``mathjax_path``).
MATHJAX_PATH = "mathjax/tex-mml-chtml.js"
#: What the site keeps of the build: the TeX-and-MathML-to-HTML page script and what it
#: loads on demand (TeX extensions through ``autoload``, the HTML output's fonts, the
#: menu's accessibility and speech parts); not the other bundles (SVG output, ...).
MATHJAX_PARTS = ("tex-mml-chtml.js", "input/tex/extensions", "input/mml/extensions",
                 "output/chtml/fonts", "a11y", "sre", "ui", "adaptors")
MATHJAX_STAGED = DOCS / "_build" / "mathjax_static"


def mathjax_source() -> Path | None:
    """The folder of MathJax's built files in the installed distribution, or ``None``."""
    try:
        dist = importlib.metadata.distribution(MATHJAX_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    root = Path(str(dist.locate_file(MATHJAX_BUILD)))
    return root if (root / "tex-mml-chtml.js").is_file() else None


def stage_mathjax(app: Any = None, config: Any = None) -> None:
    """Copy MathJax into the staging folder and point the site at its own copy.

    The staging folder (``docs/_build/mathjax_static``) joins ``html_static_path``, so
    Sphinx copies it into ``_static/``; ``mathjax_path`` becomes :data:`MATHJAX_PATH`.
    The copy is redone only when the installed version changes.
    """
    src = mathjax_source()
    if src is None:
        _logger().warning(f"MathJax is not installed ({MATHJAX_DIST}, in the docs extra): "
                          "the pages load it from a CDN and show raw TeX offline")
        return
    target = MATHJAX_STAGED / "mathjax"
    stamp = target / ".version"
    version = importlib.metadata.version(MATHJAX_DIST)
    if not stamp.exists() or stamp.read_text() != version:
        shutil.rmtree(target, ignore_errors=True)
        for part in MATHJAX_PARTS:
            if (src / part).is_dir():
                shutil.copytree(src / part, target / part)
            else:
                (target / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / part, target / part)
        shutil.copy2(src.parent / "LICENSE", target / "LICENSE")
        stamp.write_text(version)
    if config is not None:
        config.html_static_path = [*config.html_static_path, str(MATHJAX_STAGED)]
        config.mathjax_path = MATHJAX_PATH


def setup(app: Any) -> dict:
    """Register the page generators (they run once the configuration is read)."""
    app.connect("config-inited", write_api_pages)
    app.connect("config-inited", stage_examples)
    app.connect("config-inited", stage_mathjax)
    app.connect("autodoc-process-docstring", module_references, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
