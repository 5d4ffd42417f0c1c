"""The two rooms of hessian: curvature never imports training; no private name crosses."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import hessian  # noqa: E402

ROOT = Path(hessian.__file__).resolve().parent


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(absolute module, imported names, line)`` of every import in ``path``, nested too."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    package = list(rel.parts[:-1])  # a module's package; an __init__'s is its own
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [a.name for a in node.names], node.lineno))
    return out


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "hessian" else None


def _private(module: str, name: str | None = None) -> bool:
    parts = module.split(".")[2:] + ([name] if name else [])
    return any(p.startswith("_") for p in parts)


@pytest.mark.parametrize("path", sorted((ROOT / "curvature").rglob("*.py")),
                         ids=lambda p: p.name)
def test_curvature_never_imports_training(path):
    for module, names, line in _imports(path):
        if module == "hessian":  # the package itself pulls in training
            assert all(n == "curvature" for n in names), (path.name, line)
        assert _room(module) in (None, "curvature"), (path.name, line, module)


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_room(path):
    here = _room(".".join(path.relative_to(ROOT.parent).with_suffix("").parts))
    for module, names, line in _imports(path):
        room = _room(module)
        if room is None or room == here:
            continue
        assert not _private(module), (path.name, line, module)
        for n in names:
            assert not n.startswith("_"), (path.name, line, module, n)


def test_old_paths_and_public_names():
    import hessian.distributed as hd
    import hessian.optim

    assert hd.top_eigenvalues is hessian.curvature.distributed.top_eigenvalues
    assert hd.DistributedOperator is hessian.curvature.distributed.DistributedOperator
    assert hessian.distributed is hd
    assert hessian.optim.SNRAdamW is hessian.SNRAdamW is hessian.training.optim.SNRAdamW
    for name in hessian.__all__:
        assert getattr(hessian, name) is not None, name
    assert hessian.HessianOperator is hessian.curvature.operators.HessianOperator
    assert hessian.SpectrumMonitor is hessian.training.monitor.SpectrumMonitor


def test_plot_is_loaded_on_use_without_matplotlib():
    code = ("import sys, hessian; before = 'matplotlib' in sys.modules; p = hessian.plot; "
            "print(before, 'matplotlib' in sys.modules, p.__name__, "
            "p.spectra_over_training.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False", "hessian.training.plot",
                                  "hessian.training.plot"]
