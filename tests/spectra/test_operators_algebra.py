"""Operator algebra (``a * op``, ``op1 +- op2``, ``op + s * identity(n)``) and ``to_scipy``.

Every combination is checked against the dense matrix it stands for, and its flags
against the table of :mod:`spectra.operators.algebra`.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import spectra
from spectra import Operator, as_operator
from spectra.operators import dense_matrix, identity
from spectra.testing import matrix_from_eigenvalues

N = 12
A = matrix_from_eigenvalues(np.linspace(0.5, 4.0, N), rng=0)
B = matrix_from_eigenvalues(np.geomspace(1e-2, 2.0, N), rng=1)
G = np.random.default_rng(2).standard_normal((N, N))  # not symmetric
EYE = np.eye(N)


def _ops():
    return as_operator(A, psd=True), as_operator(B, psd=True), as_operator(G)


# (name, build(opA, opB, opG), dense, symmetric, psd)
CASES = [
    ("2A", lambda a, b, g: 2.0 * a, 2 * A, True, True),
    ("A*3", lambda a, b, g: a * 3, 3 * A, True, True),
    ("np.float64*A", lambda a, b, g: np.float64(0.5) * a, 0.5 * A, True, True),
    ("-A", lambda a, b, g: -a, -A, True, False),
    ("A/4", lambda a, b, g: a / 4, A / 4, True, True),
    ("A+B", lambda a, b, g: a + b, A + B, True, True),
    ("A-B", lambda a, b, g: a - b, A - B, True, False),
    ("A+0.3I", lambda a, b, g: a + 0.3 * identity(N), A + 0.3 * EYE, True, True),
    ("A-0.3I", lambda a, b, g: a - 0.3 * identity(N), A - 0.3 * EYE, True, False),
    ("A+(-0.3)EYE", lambda a, b, g: a + (-0.3) * identity(N), A - 0.3 * EYE, True, False),
    ("5I-A", lambda a, b, g: 5 * identity(N) - a, 5 * EYE - A, True, False),
    ("EYE+A", lambda a, b, g: identity(N) + a, EYE + A, True, True),
    ("A+G", lambda a, b, g: a + g, A + G, False, False),
    ("G+G", lambda a, b, g: g + g, 2 * G, None, False),
    ("2(A+B)-0.5I", lambda a, b, g: 2 * (a + b) - 0.5 * identity(N), 2 * (A + B) - 0.5 * EYE,
     True, False),
    ("EYE+EYE", lambda a, b, g: identity(N) + 2 * identity(N), 3 * EYE, True, True),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_algebra_matches_dense_and_keeps_flags(case):
    _, build, dense, symmetric, psd = case
    op = build(*_ops())
    assert isinstance(op, Operator)
    np.testing.assert_allclose(dense_matrix(op), dense, rtol=1e-13, atol=1e-13)
    assert op.symmetric is symmetric and op.psd is psd
    v = np.random.default_rng(3).standard_normal((N, 3))
    np.testing.assert_allclose(op.matmat(v), dense @ v, rtol=1e-12, atol=1e-12)


def test_algebra_feeds_the_estimators():
    a, b, _ = _ops()
    op = a + b + 0.25 * identity(N)
    want = np.trace(A + B) + 0.25 * N
    assert spectra.trace(op, N).value == pytest.approx(want, rel=1e-12)
    est = spectra.trace(op, 8, method="xnystrace", rng=0)  # psd kept, so xnystrace runs
    assert abs(est.value - want) < 5 * est.stderr + 1e-8
    top = spectra.eigsh(op, 1, which="LA", rng=0).eigenvalues[0]
    assert top == pytest.approx(np.linalg.eigvalsh(A + B)[-1] + 0.25, rel=1e-8)


@pytest.mark.parametrize("bad,exc,match", [
    (lambda a: a + 1.0, TypeError, "identity"),
    (lambda a: 1 - a, TypeError, "identity"),
    (lambda a: a + np.float64(2.0), TypeError, "identity"),
    (lambda a: a * "x", TypeError, "scalar"),
    (lambda a: a * np.ones(N), TypeError, "@"),
    (lambda a: a * (1 + 2j), TypeError, "scalar"),
    (lambda a: a * np.inf, ValueError, "scalar"),
    (lambda a: a / 0, ZeroDivisionError, "zero"),
    (lambda a: a + as_operator(np.eye(3)), ValueError, "shapes"),
    (lambda a: a + identity(3), ValueError, "shapes"),
    (lambda a: a + as_operator(A.astype(np.float32)), TypeError, "dtypes"),
])
def test_algebra_refuses(bad, exc, match):
    with pytest.raises(exc, match=match):
        bad(_ops()[0])


def test_torch_operators_keep_framework():
    torch = pytest.importorskip("torch")
    a = as_operator(torch.from_numpy(A), psd=True)
    b = as_operator(torch.from_numpy(B), psd=True)
    op = 2 * a - b + 0.5 * identity(N)
    assert op.backend == "torch" and op.dtype == torch.float64
    v = torch.ones(N, dtype=torch.float64)
    out = op.matvec(v)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), (2 * A - B + 0.5 * EYE) @ np.ones(N), rtol=1e-12)
    with pytest.raises(TypeError, match="framework"):
        _ = a + as_operator(B)


# ---------------------------------------------------------------------------- to_scipy
@pytest.mark.parametrize("kind", ["dense", "sparse", "matvec", "sum"])
def test_to_scipy_same_products(kind):
    a = {"dense": as_operator(A), "sparse": as_operator(sp.csr_matrix(A)),
         "matvec": Operator.from_matvec(lambda v: A @ v, (N, N), dtype=np.float64,
                                        symmetric=True),
         "sum": as_operator(A) + 0.0 * identity(N)}[kind]
    L = a.to_scipy()
    assert isinstance(L, sla.LinearOperator) and L.shape == (N, N) and L.dtype == np.float64
    x = np.arange(N, dtype=np.float64)
    before = a.num_matvecs
    np.testing.assert_allclose(L @ x, A @ x, rtol=1e-13)
    np.testing.assert_allclose(L.matmat(np.c_[x, 2 * x]), A @ np.c_[x, 2 * x], rtol=1e-13)
    np.testing.assert_allclose(L.H @ x, A @ x, rtol=1e-13)
    assert a.num_matvecs == before + 4  # 1 + 2 + 1 products
    w = sla.eigsh(L, k=2, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(A)[-2:], rtol=1e-10)
    sol, info = sla.cg(L, x, rtol=1e-12)
    assert info == 0
    np.testing.assert_allclose(A @ sol, x, rtol=1e-8, atol=1e-8)


def test_to_scipy_nonsymmetric_has_no_adjoint():
    L = as_operator(G).to_scipy()
    np.testing.assert_allclose(L @ np.ones(N), G @ np.ones(N))
    with pytest.raises(NotImplementedError):
        L.rmatvec(np.ones(N))


def test_to_scipy_keeps_float32_and_torch():
    torch = pytest.importorskip("torch")
    a = as_operator(torch.from_numpy(A).float())
    L = a.to_scipy()
    assert L.dtype == np.float32
    y = L @ np.ones(N)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, A @ np.ones(N), rtol=1e-5)


def test_curvature_operators_get_algebra_and_to_scipy():
    torch = pytest.importorskip("torch")
    hessian = pytest.importorskip("hessian")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                torch.nn.Linear(4, 2)).double()
    X, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    H = hessian.HessianOperator(model, torch.nn.functional.mse_loss, (X, y))
    n = H.shape[0]
    Hd = dense_matrix(H)
    Lh = H.to_scipy()
    x = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(Lh @ x, Hd @ x, rtol=1e-10, atol=1e-12)
    shifted = 2.0 * H + 0.1 * identity(n)
    assert shifted.symmetric and shifted.backend == "torch"
    np.testing.assert_allclose(dense_matrix(shifted), 2 * Hd + 0.1 * np.eye(n), rtol=1e-10,
                               atol=1e-12)
