"""The documentation: the site builds with warnings as errors, its snippets run.

The build (one, about 20 s of CPU) runs with ``plot_gallery=0``: the gallery shows the
examples' code without executing them, since ``tests/test_examples.py`` runs them.
``make docs`` executes them too.
"""

import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = ("_build", "auto_examples", "api/generated")
#: The theory pages; docstrings cite them by these names (``:doc:`/theory/...```).
THEORY_PAGES = tuple(f"theory/{name}" for name in (
    "lanczos", "slq_kpm", "slq_brackets", "trace_estimators", "gramians", "free_decompression",
    "optimizer", "pruning"))
SNIPPET_PAGES = sorted(p for p in DOCS.rglob("*.rst")
                       if not any(part in p.relative_to(DOCS).as_posix() for part in GENERATED)
                       and ">>>" in p.read_text())


def _load_extension():
    spec = importlib.util.spec_from_file_location("impalpable_docs",
                                                  DOCS / "_ext" / "impalpable_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_docs_build(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("myst_parser")
    out = tmp_path / "html"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                          "-b", "html", "-D", "plot_gallery=0", str(DOCS), str(out)],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    for page in ("index", "start_here", "install", "quickstart/spectra",
                 "quickstart/freedecomp", "quickstart/hessian", *THEORY_PAGES,
                 "benchmarks", "api/index", "auto_examples/index"):
        assert (out / f"{page}.html").is_file(), page
    # Every example has a gallery page, and every package an API page.
    for example in (ROOT / "examples").glob("*.py"):
        assert (out / "auto_examples" / f"{example.stem}.html").is_file(), example.name
    ext = _load_extension()
    for package in ext.importable():
        assert (out / "api" / "generated" / f"{package}.html").is_file(), package
    _assert_local_mathjax(out, ext.MATHJAX_PATH)


def _assert_local_mathjax(out, mathjax_path):
    """Math renders without a network: every page with math loads the site's MathJax."""
    script = out / "_static" / mathjax_path
    assert script.is_file(), "MathJax is not bundled: install the docs extra"
    fonts = list((out / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))
    assert fonts, "the MathJax fonts are missing"
    pages = [page for page in out.rglob("*.html") if 'class="math' in page.read_text()]
    assert len(pages) >= 5
    for page in pages:
        html = page.read_text()
        loads = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', html, flags=re.IGNORECASE)
        assert loads, f"{page.name} has math but loads no MathJax"
        for src in loads:
            assert "://" not in src, f"{page.name} loads MathJax from the network: {src}"
            assert src.split("?")[0].endswith("_static/" + mathjax_path), src


@pytest.mark.parametrize("page", SNIPPET_PAGES, ids=[p.stem for p in SNIPPET_PAGES])
def test_snippets(page, monkeypatch):
    """The ``>>>`` snippets of the hand-written pages run and print what they show."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(DOCS)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(page), module_relative=False, optionflags=flags,
                              verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_snippet_pages_found():
    names = {p.relative_to(DOCS).as_posix() for p in SNIPPET_PAGES}
    assert {"quickstart/spectra.rst", "quickstart/freedecomp.rst",
            "quickstart/hessian.rst", "start_here.rst", "theory/optimizer.rst",
            "theory/pruning.rst", "theory/gramians.rst"} <= names


def test_theory_pages_in_the_toctree_and_cited_docs_exist():
    """Every theory page is in the index's toctree; every page a docstring cites exists."""
    index = (DOCS / "index.rst").read_text()
    for page in THEORY_PAGES:
        assert (DOCS / f"{page}.rst").is_file(), page
        assert f"   {page}\n" in index, page
    assert index.index("   start_here\n") < index.index("   install\n")
    cited = set()
    for package in ("spectra", "freedecomp", "hessian", "impalpable"):
        for path in (ROOT / package).rglob("*.py") if (ROOT / package).is_dir() else []:
            cited |= set(re.findall(r":doc:`/?(theory/[a-z_]+)`", path.read_text()))
            assert "THEORY.md" not in path.read_text(), path  # cite the project's pages
    assert cited <= set(THEORY_PAGES), cited - set(THEORY_PAGES)


def test_api_pages_cover_every_public_name():
    ext = _load_extension()
    pages = ext.api_pages()
    assert {"spectra", "freedecomp", "hessian"} <= set(ext.importable())
    for package in ext.importable():
        mod = importlib.import_module(package)
        text = pages[package]
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, type(sys)):  # a submodule: its own page, in the toctree
                assert f"{package}.{name}" in pages, name
                assert f"   {package}.{name}\n" in text, name
            else:
                assert f"\n   {name}\n" in text, (package, name)
        # Every name a public submodule exports is documented on some page.
        for full in (k for k in pages if k.startswith(f"{package}.")):
            for name in getattr(importlib.import_module(full), "__all__", []):
                where = [k for k, page in pages.items() if k.split(".")[0] == package
                         and f"\n   {name}\n" in page]
                assert len(where) >= 1, (full, name)


def test_api_pages_document_each_object_once(tmp_path, monkeypatch):
    """A package's own exports are not repeated in its modules; name clashes get no target."""
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        '"""Fake."""\nfrom . import plot\nfrom .density import density\n'
        '__all__ = ["density", "plot"]\n')
    (pkg / "density.py").write_text(
        '"""Densities."""\n__all__ = ["density", "helper"]\n'
        'def density():\n    """D."""\ndef helper():\n    """H."""\n')
    (pkg / "plot.py").write_text('"""Plots."""\n__all__ = ["draw"]\n'
                                 'def draw():\n    """Draw."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    ext = _load_extension()
    pages = ext.api_pages(("fakepkg",))
    assert set(pages) == {"fakepkg", "fakepkg.density", "fakepkg.plot"}
    # The module shares its name with a function of the package: no second target.
    assert ":no-index:" in pages["fakepkg.density"]
    assert ":no-index:" not in pages["fakepkg.plot"]
    # density is documented at the package level only, helper in its module.
    assert "\n   density\n" in pages["fakepkg"]
    assert "\n   density\n" not in pages["fakepkg.density"]
    assert "\n   helper\n" in pages["fakepkg.density"]
    assert "   fakepkg.plot\n" in pages["fakepkg"]


def test_titled_source_adds_one_underline():
    ext = _load_extension()
    src = '"""A title.\n\nBody.\n"""\n\nx = 1\n'
    out = ext.titled_source(src)
    assert out == '"""A title.\n========\n\nBody.\n"""\n\nx = 1\n'
    assert ext.titled_source(out) == out  # already titled: unchanged
    raw = 'r"""Raw \\alpha title.\n"""\n'
    assert ext.titled_source(raw).splitlines()[1] == "=" * len("Raw \\alpha title.")
    with pytest.raises(ValueError, match="docstring"):
        ext.titled_source("x = 1\n")
    for example in (ROOT / "examples").glob("*.py"):
        titled = ext.titled_source(example.read_text())
        compile(titled, example.name, "exec")  # still valid Python
        underline = titled.splitlines()[1]
        assert underline and len(set(underline)) == 1 and underline[0] in "=-~^*#"


def test_module_references_relabels_and_cites():
    ext = _load_extension()
    lines = ["Text [Rab12-1]_.", "", ".. [Rab12-1] A. Author, a paper.",
             ".. [Rab12-2] B. Author, another."]
    ext.module_references(None, "module", "m", None, None, lines)
    text = "\n".join(lines)
    assert "[Mab12-1]_." in text and ".. [Mab12-2]" in text and "[R" not in text
    assert lines[-2].strip() == "[Mab12-1]_, [Mab12-2]_"
    before = ["Text [Rab12-1]_.", ".. [Rab12-1] A."]
    after = list(before)
    ext.module_references(None, "function", "f", None, None, after)
    assert after == before


def test_absent_package_is_left_out():
    ext = _load_extension()
    assert ext.importable(("spectra", "no_such_package_here")) == ("spectra",)
    toc = ext.packages_toctree(("spectra", "hessian"))
    assert toc.endswith("   generated/spectra\n   generated/hessian\n")
    assert set(ext.api_pages(("spectra",))) == {k for k in ext.api_pages() if
                                               k.split(".")[0] == "spectra"}
