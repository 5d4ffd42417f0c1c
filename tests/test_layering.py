"""The dependency direction and the privacy of names, read from every import in the tree.

    spectra  <-  freedecomp  <-  hessian  <-  impalpable      (arrow: "is imported by")

Imports inside functions count as much as those at the top of a module. Inside
``hessian`` the curvature side (``hessian.curvature``) never imports the training side
(``hessian.training``, nor the ``hessian`` package itself, whose ``__init__`` loads
both). A private module or name (a component starting with ``_``) is used only inside
the package that holds it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spectra", "freedecomp", "hessian", "impalpable")
# What each library package may not import (impalpable may import everything).
FORBIDDEN = {
    "spectra": ("freedecomp", "hessian", "impalpable"),
    "freedecomp": ("hessian", "impalpable"),
    "hessian": ("impalpable",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, str]]:
    """Every import in ``source`` as ``(line, absolute module, imported name or "")``."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out += [(node.lineno, base, a.name) for a in node.names]
    return out


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _home_of_private(target: str, name: str) -> str | None:
    """The package inside which an import of ``name`` from ``target`` must stay, if private.

    A private module (any ``_x`` component of ``target``) belongs to the package that holds
    it; a private name of a package belongs to that package, of a module to the module's
    package (its siblings may use it). ``None`` when nothing imported is private.
    """
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    if name and _private(name):
        return target if _is_package_name(target) else target.rpartition(".")[0]
    return None


def _is_package_name(name: str) -> bool:
    return (ROOT / Path(*name.split(".")) / "__init__.py").exists()


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The layering and privacy rules broken by the imports in ``source``."""
    top = module.split(".")[0]
    found = []
    for line, target, name in imports(source, module, is_package):
        full = f"{target}.{name}" if name else target
        where = f"{module}:{line} imports {full}"
        if any(_inside(full, f) for f in FORBIDDEN.get(top, ())):
            found.append(f"{where}: {top} must not import {full.split('.')[0]}")
        if _inside(module, "hessian.curvature") and (
            target == "hessian" or _inside(full, "hessian.training")
        ):
            found.append(f"{where}: the curvature side must not import the training side")
        home = _home_of_private(target, name)
        if home is not None and home.split(".")[0] in PACKAGES and not _inside(module, home):
            found.append(f"{where}: a private name used outside {home}")
    return found


def _sources():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_every_package_is_read():
    names = {_module_name(p) for p in _sources()}
    for pkg in PACKAGES:
        assert pkg in names, f"{pkg}/__init__.py not found"
    assert len(names) > 40


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_layering_and_privacy(path):
    found = violations(path.read_text(), _module_name(path), _is_package(path))
    assert not found, "\n".join(found)


# --- the checker itself: each rule fires on an added forbidden import --------------------
@pytest.mark.parametrize("module, source, is_pkg, rule", [
    ("spectra.densities", "import freedecomp\n", False, "spectra must not import freedecomp"),
    ("spectra.krylov.eigsh", "def f():\n    from hessian import trace\n", False,
     "spectra must not import hessian"),
    ("spectra.plot", "def f():\n    import impalpable.cli\n", False, "must not import impalpable"),
    ("freedecomp.decompress", "def f():\n    import hessian\n", False,
     "freedecomp must not import hessian"),
    ("freedecomp.models", "from impalpable import figures\n", False, "must not import impalpable"),
    ("hessian.curvature.operators", "def f():\n    from hessian.training import SNRAdamW\n",
     False, "curvature side must not import the training side"),
    ("hessian.curvature.spectrum", "import hessian\n", False, "curvature side"),
    ("hessian.training.monitor", "import impalpable\n", False, "hessian must not import"),
    ("freedecomp.decompress", "from spectra.stochtrace.core import _Ctx\n", False, "private"),
    ("hessian.training.monitor", "from spectra._numba import densities\n", False, "private"),
    ("hessian.training.prune", "from hessian.curvature.data import _eval_mode\n", False,
     "private"),
    ("spectra.densities", "from .stochtrace.core import _sem\n", False, "private"),
])
def test_checker_fires(module, source, is_pkg, rule):
    found = violations(source, module, is_pkg)
    assert any(rule in f for f in found), found


@pytest.mark.parametrize("module, source, is_pkg", [
    ("spectra.stochtrace.hutchpp", "from .core import _Ctx, _drive\n", False),
    ("spectra.densities", "from ._numba.densities import gaussian_mixture\n", False),
    ("spectra.krylov.eigsh", "from .._numba.krylov import three_term_update\n", False),
    ("hessian.training.dissipation", "from .trajectory import _sketch\n", False),
    ("hessian.curvature.spectrum", "import spectra\nfrom freedecomp import decompress\n", False),
    ("impalpable.cli", "import hessian\nimport freedecomp\n", False),
    ("spectra.stochtrace", "from .core import _exact_diagonal\n", True),
])
def test_checker_allows(module, source, is_pkg):
    assert violations(source, module, is_pkg) == []
