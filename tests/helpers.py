"""Shared test helpers, imported as ``helpers`` (``tests/`` is put on ``sys.path`` by
``tests/spectra/conftest.py``; tests run with ``--import-mode=importlib``).

* :func:`tol` and :func:`pick`: the dtype tolerance lookup.
* :class:`Case`: one estimator as the property sweeps of
  ``tests/spectra/test_properties.py`` see it.
* :func:`check_exact`: the "exact at full budget" check.
* :func:`check_torch_matches_numpy`: the "torch equals numpy" check, and
  :func:`same_probes`, the generator that gives both frameworks the same probes.
* :func:`float32_diagonal`: a long float32 torch diagonal operator with outliers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from spectra.backend import dtype_name, is_torch
from spectra.backend import tolerance as _tolerance

#: ``(rtol, atol)`` per compared quantity.
Tolerances = dict[str, tuple[float, float]]


def tol(dtype: Any, kind: str = "rtol", *, scale: float = 1.0) -> float:
    """The project's tolerance of ``kind`` (``rtol``, ``atol``, ``sym``) for ``dtype``, scaled.

    The table is :data:`spectra.backend.TOLERANCES`, the one the library uses for its own
    symmetry and breakdown tests.
    """
    return scale * _tolerance(dtype)[kind]


def pick(dtype: Any, float64: float, float32: float) -> float:
    """A test's own tolerance for ``dtype``: ``float64`` or ``float32`` (numpy or torch dtype)."""
    name = dtype_name(dtype)
    if name not in ("float32", "float64"):
        raise TypeError(f"no tolerance for dtype {name}; allowed: float32, float64")
    return float64 if name == "float64" else float32


@dataclass(frozen=True)
class Case:
    """One estimator with the quantities the property checks compare.

    Attributes
    ----------
    name : str
        Test id.
    run : callable
        ``run(A) -> result`` for a matrix ``A`` (numpy array or torch tensor).
    values : callable
        ``values(result) -> {label: number or array}``, the host quantities compared.
    expected : callable, optional
        ``expected(A, lam) -> {label: reference}`` for the exact check (``A`` numpy,
        ``lam`` its eigenvalues ascending); ``None`` when the case is not exact.
    tolerances : dict
        ``{label: (rtol, atol)}`` of the comparison (default ``(1e-12, 0)``).
    device_attr : str, optional
        Attribute of the result that must stay a torch tensor for torch input (a basis,
        eigenvectors).
    extra : callable, optional
        ``extra(result, A)``: further assertions of the exact check (``A`` numpy).
    says_exact : bool
        Whether the exact result's message (or method) says ``"exact"``.
    """

    name: str
    run: Callable[[Any], Any]
    values: Callable[[Any], dict[str, Any]]
    expected: Callable[[np.ndarray, np.ndarray], dict[str, Any]] | None = None
    tolerances: Tolerances = field(default_factory=dict)
    device_attr: str | None = None
    extra: Callable[[Any, np.ndarray], None] | None = None
    says_exact: bool = True

    def __str__(self) -> str:
        return self.name

    def tolerance(self, label: str) -> tuple[float, float]:
        return self.tolerances.get(label, (1e-12, 0.0))


def _compare(got: dict, want: dict, case: Case, what: str) -> None:
    for label, ref in want.items():
        rtol, atol = case.tolerance(label)
        np.testing.assert_allclose(np.asarray(got[label], dtype=np.float64), ref, rtol=rtol,
                                   atol=atol, err_msg=f"{case.name}: {label} ({what})")


def check_exact(case: Case, A: np.ndarray, lam: np.ndarray) -> Any:
    """Run ``case`` at its full budget on ``A`` and assert it is exact.

    The values match ``case.expected(A, lam)``; the run cost exactly ``n`` products; a
    standard error, where the result has one, is zero; a result that reports convergence
    converged; a message or method, where present, says ``"exact"`` (unless
    ``case.says_exact`` is false). Returns the result.
    """
    res = case.run(A)
    _compare(case.values(res), case.expected(A, lam), case, "exact at full budget")
    assert res.num_matvecs == A.shape[0], f"{case.name}: {res.num_matvecs} products"
    if getattr(res, "stderr", None) is not None:
        np.testing.assert_array_equal(res.stderr, 0.0)
    if hasattr(res, "converged"):
        assert res.converged, case.name
    marker = getattr(res, "message", None) or getattr(res, "method", None)
    if marker is not None and case.says_exact:
        assert "exact" in marker, f"{case.name}: {marker!r}"
    if case.extra is not None:
        case.extra(res, A)
    return res


def same_probes(seed: int) -> Any:
    """A fresh ``torch.Generator`` seeded with ``seed``.

    An integer seed gives a numpy and a torch operator different probes (numpy's stream
    and torch's, :mod:`spectra.probes`); equal torch generators give both the same ones.
    Cases compared across frameworks draw from it.
    """
    torch = pytest.importorskip("torch")
    return torch.Generator().manual_seed(seed)


def float32_diagonal(n: int, outliers: Any, shuffle: int | None = None) -> Any:
    """A float32 torch diagonal operator: a bulk uniform on ``[-1, 1]``, ``outliers`` on top.

    The outliers take the first entries (or random places with ``shuffle``, a seed). Its
    products cost one multiply: long vectors where float32 sums drift, cheaply.
    """
    torch = pytest.importorskip("torch")
    from spectra import Operator

    d = torch.linspace(-1.0, 1.0, n, dtype=torch.float32)
    d[:len(outliers)] = torch.as_tensor(np.asarray(outliers), dtype=torch.float32)
    if shuffle is not None:
        d = d[torch.randperm(n, generator=torch.Generator().manual_seed(shuffle))]
    return Operator.from_matvec(lambda v: d * v, (n, n), dtype=torch.float32, symmetric=True,
                                matmat=lambda V: d[:, None] * V)


def check_torch_matches_numpy(case: Case, A: np.ndarray) -> tuple[Any, Any]:
    """Run ``case`` on ``A`` and on ``torch.from_numpy(A)`` and assert the same answer.

    The case must give both runs the same probes (:func:`same_probes`).

    Same compared values (to ``case.tolerances``), same product count, host results as
    float64 numpy (never tensors), and ``case.device_attr`` a torch tensor of ``A``'s
    dtype for torch input. Skips without torch. Returns both results.
    """
    torch = pytest.importorskip("torch")
    a = case.run(A)
    b = case.run(torch.from_numpy(A))
    va, vb = case.values(a), case.values(b)
    for label, got in vb.items():
        assert not is_torch(got), f"{case.name}: {label} is a tensor, not a host array"
        assert np.asarray(got).dtype == np.float64, f"{case.name}: {label} not float64"
    _compare(vb, va, case, "torch against numpy")
    assert b.num_matvecs == a.num_matvecs, case.name
    if case.device_attr is not None:
        out = getattr(b, case.device_attr)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64, case.name
    return a, b
