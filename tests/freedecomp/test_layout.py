"""Layout of freedecomp: no import cycles, lazy package names, typed results by key."""

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2] / "freedecomp"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """freedecomp modules imported anywhere in ``path`` (inside functions included)."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("freedecomp")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.startswith("freedecomp"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_no_import_cycles():
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = {m: {d for d in _imports(p) if d in files and d != m} for m, p in files.items()}
    graph["freedecomp"] = set()  # the package only names its modules lazily
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, f"import cycle: {' -> '.join([*stack, m, d])}"
            if d not in state:
                visit(d, [*stack, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_package_names_are_the_objects():
    code = ("import freedecomp.driver, freedecomp.result; from freedecomp import decompress, "
            "Decompression, FreeDecompressionWarning; import inspect; "
            "print(inspect.isfunction(decompress), inspect.isclass(Decompression), "
            "issubclass(FreeDecompressionWarning, UserWarning))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "True", "True"]


def test_diagnostics_typed_and_by_key():
    from freedecomp import decompress, laws
    from freedecomp.result import Diagnostics, Score

    A = laws.MarchenkoPastur(1 / 8).sample_matrix(200, 0)
    r = decompress(A, 800, rng=0)
    d = r.diagnostics
    assert isinstance(d, Diagnostics)
    assert d["model"] == d.model and d.get("reason") == d.reason
    assert "free_compression" in d and "columns" not in d
    assert d.get("columns", "absent") == "absent" and d["columns"] is None
    assert all(isinstance(s, Score) for s in d["validation"].values())
    assert d["validation"][d.model]["error"] == d.validation[d.model].error
    assert isinstance(d["warnings"], tuple)
    with pytest.raises(KeyError):
        d["no such key"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.model = "x"
    assert set(d.keys()) == set(d) and "model" in d.keys()
    assert r.flow[-1].diagnostics is d and np.isfinite(d["alpha"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"repeats": 0}, ValueError, "repeats must be an integer >= 1"),
        ({"slack": -1.0}, ValueError, "slack must be a real number >= 0"),
        ({"check": "yes"}, TypeError, "check must be True or False"),
        ({"num_samples": 2.5}, TypeError, "num_samples must be an integer"),
        ({"grid": 1}, ValueError, r"grid \(a point count\) must be an integer >= 2"),
        ({"method": 3}, TypeError, "method must be one of"),
        ({"method": "deformed", "columns": 0}, ValueError, "columns must be an integer >= 1"),
    ],
)
def test_arguments_go_through_the_shared_checkers(kwargs, exc, match):
    from freedecomp import decompress

    with pytest.raises(exc, match=match):
        decompress(np.linspace(0.1, 1, 50), 100, **kwargs)


def test_sampler_arguments_go_through_the_shared_checkers():
    from freedecomp import decompress, laws

    with pytest.raises(ValueError, match=r"total must be an integer >= 33, got 20 \(it must"):
        decompress(lambda idx: np.eye(len(idx)), 40, n=32, total=20)
    with pytest.raises(TypeError, match="size must be an integer"):
        decompress(np.linspace(0.1, 1, 50), 100.5)
    with pytest.raises(ValueError, match="matrix size n must be an integer >= 1"):
        laws.Wigner(1.0).sample_matrix(0)
