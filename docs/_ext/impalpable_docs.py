"""Build helpers of the impalpable documentation (a local Sphinx extension).

Three jobs, all done from the sources so that new modules and examples appear in the
docs without editing any page:

* **API pages from** ``__all__``. For each package, a page with the package docstring
  and one autosummary entry per public top-level name, and one page per public
  submodule (not ``_``-prefixed) listing the names of its ``__all__`` that are not
  already documented. The pages are written into ``docs/api/generated/`` (ignored by
  git) when the configuration is read, before autosummary writes its stubs.
* **Gallery sources.** sphinx-gallery wants a header file inside the examples folder
  and a reST title at the top of each docstring. The examples stay plain scripts: they
  are copied into ``docs/_build/examples_src/`` with a title underline added, and the
  gallery is built from the copies.
* **Running the examples.** Every example takes ``--small --out DIR`` and writes its
  figures as PNG files into ``DIR``. :func:`example_argv` passes those flags when
  sphinx-gallery executes an example, and :func:`png_scraper` puts the PNG files the
  example wrote into the gallery page.
"""

from __future__ import annotations

import ast
import importlib
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

PACKAGES = ("spectra", "freedecomp", "hessian")
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


def api_pages(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The reST text of every generated API page, keyed by file stem.

    Each object is documented once: a name exported by the package is documented at
    the package level; a name that several submodules export is documented in the
    module that defines it (``obj.__module__``), else in the first one listed.

    Parameters
    ----------
    packages : tuple of str
        Importable package names.

    Returns
    -------
    dict
        ``{"spectra": "...", "spectra.plot": "...", ...}``.
    """
    pages: dict[str, str] = {}
    for name in packages:
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


def write_api_pages(app: Any = None, config: Any = None) -> None:
    """Write :func:`api_pages` into ``docs/api/generated/`` and drop stale files.

    Only changed pages are rewritten (so incremental builds stay incremental). Files
    that are neither a page nor the autosummary stub of a listed object (left behind
    by a name that left ``__all__``) are removed: Sphinx would warn that they are in
    no toctree.
    """
    API_OUT.mkdir(parents=True, exist_ok=True)
    pages = api_pages()
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
        path = API_OUT / f"{stem}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
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


def setup(app: Any) -> dict:
    """Register the page generators (they run once the configuration is read)."""
    app.connect("config-inited", write_api_pages)
    app.connect("config-inited", stage_examples)
    app.connect("autodoc-process-docstring", module_references, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
