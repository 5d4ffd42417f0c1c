"""eigsh's lean (small-n) path: its compiled kernels against their plain NumPy twins, and
its answers against the general path and eigvalsh (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import spectra.krylov._basis as basis_mod
from spectra import Operator, as_operator, eigsh
from spectra._numba.krylov import project_small
from spectra._numba.trlan import BREAKDOWN, EXHAUSTED, NONFINITE, lean_steps
from spectra.testing import matrix_from_eigenvalues


def _project_twin(V, j, w, col, dgks):
    """NumPy twin of project_small: local couplings, CGS with the DGKS second pass."""
    w = w - col @ V[:j]
    alpha = V[j] @ w
    w = w - alpha * V[j]
    w2 = w @ w
    h = np.zeros(j + 1)
    for _ in range(2):
        hp = V[: j + 1] @ w
        w = w - hp @ V[: j + 1]
        h += hp
        if not (w2 - hp @ hp < dgks**2 * w2):
            break
        w2 -= hp @ hp
    h[j] += alpha
    return w, h, np.linalg.norm(w)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("j", [0, 1, 7])
def test_project_small_matches_twin(dtype, j):
    g = np.random.default_rng(j)
    n = 50
    V = np.linalg.qr(g.standard_normal((n, 10)))[0].T.astype(dtype).copy()
    col = np.zeros(j)
    if j:
        col[-1] = 0.7
    w = (g.standard_normal(n) + 3.0 * V[j]).astype(dtype)
    w_ref, h_ref, b_ref = _project_twin(V.astype(np.float64), j, w.astype(np.float64), col,
                                        0.7071)
    w_got = w.copy()
    h, b = project_small(V, j, w_got, col, 0.7071)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(h, h_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(b, b_ref, rtol=tol)
    np.testing.assert_allclose(w_got, w_ref, atol=tol)


def test_project_small_flags_non_finite():
    V = np.eye(4)
    w = np.array([np.nan, 1.0, 0.0, 0.0])
    _, b = project_small(V, 0, w, np.zeros(0), 0.7071)
    assert np.isnan(b)


def test_lean_and_blas_paths_agree(monkeypatch):
    A = matrix_from_eigenvalues(np.linspace(-1, 4, 300), rng=0)
    lean = eigsh(A, 3, tol=1e-10, rng=0)
    monkeypatch.setattr(basis_mod, "LEAN_N", 0)
    blas = eigsh(A, 3, tol=1e-10, rng=0)
    np.testing.assert_allclose(lean.eigenvalues, blas.eigenvalues, rtol=1e-12)
    assert abs(lean.num_matvecs - blas.num_matvecs) <= 3


# ------------------------------------------------------------------ the compiled steps
def _steps_twin(A, V, W, H, L, j0, j1, dim, st, dgks):
    """NumPy twin of lean_steps: product, scale, stored product, deflation, projection."""
    m = H.shape[0]
    for j in range(j0, j1):
        w = (A @ V[j]).astype(V.dtype)
        if st[0] == 0.0:
            big = np.max(np.abs(w))
            st[0] = 1.0 if big == 0 else np.ldexp(1.0, -np.frexp(big)[1])
        w = w * V.dtype.type(st[0])
        if W.shape[0]:
            W[j] = w
        for _ in range(2 if L.shape[0] else 0):
            w = w - (L @ w) @ L
        w, h, b = _project_twin(V, j, w, H[j, :j], dgks)
        if L.shape[0]:
            for _ in range(2):
                w = w - (L @ w) @ L
            b = np.linalg.norm(w)
        H[j, j] = h[j]
        st[1] = max(st[1], np.sqrt(h[j] ** 2 + b**2 + st[2] ** 2))
        if j + 1 >= dim:
            st[2] = 0.0
            return EXHAUSTED, j + 1
        if b <= st[3] * max(st[1], 1e-300):
            st[2] = 0.0
            if j + 1 < m:
                H[j, j + 1] = H[j + 1, j] = 0.0
            return BREAKDOWN, j + 1
        V[j + 1] = w / b
        st[2] = b
        if j + 1 < m:
            H[j, j + 1] = H[j + 1, j] = b
    return 0, j1


def _parts(A, fmt):
    e = np.zeros(0, dtype=np.int32)
    if fmt == "dense":
        return e, e, np.zeros(0, dtype=A.dtype), np.ascontiguousarray(A)
    S = sp.csr_matrix(A)
    return S.indptr, S.indices, S.data, np.zeros((0, 0), dtype=A.dtype)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("locked", [False, True])
def test_lean_steps_match_twin(fmt, dtype, locked):
    n, m = 80, 12
    A = (64.0 * matrix_from_eigenvalues(np.linspace(-1, 3, n), rng=1)).astype(dtype)
    g = np.random.default_rng(2)
    L = np.linalg.qr(g.standard_normal((n, 3)))[0].T.astype(dtype).copy() if locked else \
        np.zeros((0, n), dtype=dtype)
    v = g.standard_normal(n)
    if locked:
        v -= (L.astype(float) @ v) @ L.astype(float)
    runs = []
    for kernel in ("numba", "twin"):
        V = np.zeros((m + 1, n), dtype=dtype)
        V[0] = v / np.linalg.norm(v)
        W, H = np.zeros((m, n), dtype=dtype), np.zeros((m, m))
        st = np.array([0.0, 0.0, 0.0, 1e-12])
        if kernel == "numba":
            out = lean_steps(*_parts(A, fmt), V, W, H, L, 0, m, n - L.shape[0], st, 0.7071)
        else:
            out = _steps_twin(A.astype(np.float64), V, W, H, L, 0, m, n - L.shape[0], st,
                              0.7071)
        runs.append((out, V, W, H, st))
    (o1, V1, W1, H1, s1), (o2, V2, W2, H2, s2) = runs
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert o1 == o2 == (0, m)
    assert s1[0] == s2[0] == 2.0 ** np.round(np.log2(s1[0]))  # a power of two
    np.testing.assert_allclose(H1, H2, atol=tol)
    np.testing.assert_allclose(V1, V2, atol=tol)
    np.testing.assert_allclose(W1, W2, atol=tol * 8)
    np.testing.assert_allclose(s1[1:], s2[1:], rtol=tol)


def test_lean_steps_stop_at_breakdown_and_exhaustion():
    # diag(1, 1, 2, 2, 3, 3): a start vector sees 3 distinct values, then breaks down
    A = np.diag([1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    V = np.zeros((7, 6))
    V[0] = np.ones(6) / np.sqrt(6)
    H, st = np.zeros((6, 6)), np.array([0.0, 0.0, 0.0, 1e-10])
    none = np.zeros((0, 6))
    status, size = lean_steps(*_parts(A, "csr"), V, none, H, none, 0, 6, 6, st, 0.7071)
    assert (status, size) == (BREAKDOWN, 3) and st[2] == 0.0
    np.testing.assert_allclose(np.linalg.eigvalsh(H[:3, :3]), [0.5, 1.0, 1.5])  # times 1/2
    V = np.zeros((4, 3))
    V[0] = [1.0, 0.0, 0.0]
    st = np.array([0.0, 0.0, 0.0, 1e-10])
    B = np.array([[2.0, 1, 0], [1, 2, 1], [0, 1, 2]])
    status, size = lean_steps(*_parts(B, "dense"), V, np.zeros((0, 3)), np.zeros((3, 3)),
                              np.zeros((0, 3)), 0, 3, 3, st, 0.7071)
    assert (status, size) == (EXHAUSTED, 3)


def test_lean_steps_flag_overflow():
    A = np.full((4, 4), 1e308)
    V = np.zeros((5, 4))
    V[0] = 0.5
    st = np.array([0.0, 0.0, 0.0, 1e-10])
    none = np.zeros((0, 4))
    status, _ = lean_steps(*_parts(A, "dense"), V, none, np.zeros((4, 4)), none, 0, 4, 4, st,
                           0.7071)
    assert status == NONFINITE


# ------------------------------------------------------------------ the small-n path
def _general(A):
    """The same matrix behind a product callable: eigsh's general path."""
    return Operator.from_matvec(lambda v: A @ v, A.shape, dtype=A.dtype, symmetric=True)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("which,k", [("LA", 1), ("SA", 4), ("LM", 3), ("BE", 4)])
def test_small_path_matches_general_path_and_eigvalsh(fmt, which, k):
    lam = np.r_[np.linspace(-3, 2, 146), [2.5, 2.5, 2.9, -3.5]]
    A = matrix_from_eigenvalues(lam, rng=5)
    M = sp.csr_matrix(A) if fmt == "csr" else A
    op = as_operator(M)
    assert basis_mod.explicit_parts(op) is not None
    lean = eigsh(op, k, which=which, tol=1e-10, ncv=20, rng=0)
    gen = eigsh(_general(A), k, which=which, tol=1e-10, ncv=20, rng=0)
    assert lean.converged and gen.converged
    assert op.num_matvecs == lean.num_matvecs
    assert abs(lean.num_matvecs - gen.num_matvecs) <= 3
    np.testing.assert_allclose(lean.eigenvalues, gen.eigenvalues, rtol=1e-12, atol=1e-12)
    ref = np.sort(lam)
    want = {"LA": ref[::-1][:k], "SA": ref[:k], "LM": ref[np.argsort(-np.abs(ref))][:k],
            "BE": np.r_[ref[: k // 2], ref[len(ref) - (k - k // 2):]]}[which]
    np.testing.assert_allclose(np.sort(lean.eigenvalues), np.sort(want), atol=1e-9)
    X = lean.eigenvectors
    np.testing.assert_allclose(np.linalg.norm(A @ X - X * lean.eigenvalues, axis=0),
                               lean.residual_norms, rtol=1e-3, atol=1e-13)


def test_small_path_is_bit_reproducible_and_float32():
    A = matrix_from_eigenvalues(np.linspace(0, 1, 200), rng=6)
    a, b = (eigsh(sp.csr_matrix(A), 5, tol=1e-10, rng=3) for _ in range(2))
    assert a.eigenvalues.tobytes() == b.eigenvalues.tobytes()
    assert a.eigenvectors.tobytes() == b.eigenvectors.tobytes()
    A32 = A.astype(np.float32)
    r = eigsh(A32, 3, tol=1e-5, rng=0)
    assert r.converged and r.eigenvectors.dtype == np.float32
    np.testing.assert_allclose(r.eigenvalues, np.linalg.eigvalsh(A)[::-1][:3], rtol=1e-5)


def test_small_path_breakdown_finds_every_copy():
    # an invariant subspace after 3 steps: the lean path draws the random direction too
    A = np.diag(np.repeat([1.0, 2.0, 3.0], 20))
    res = eigsh(sp.csr_matrix(A), 3, tol=1e-10, rng=0)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [3, 3, 3], rtol=1e-10)


def test_small_path_work_arrays_are_per_thread():
    # the lean path reuses its work arrays per thread: concurrent runs on two threads
    # give the serial answers bit for bit
    from concurrent.futures import ThreadPoolExecutor

    mats = [sp.csr_matrix(matrix_from_eigenvalues(np.linspace(0, 1, 150 + 50 * i), rng=i))
            for i in range(2)]
    serial = [eigsh(M, 4, tol=1e-10, rng=1).eigenvalues.tobytes() for M in mats]
    with ThreadPoolExecutor(2) as ex:
        for _ in range(3):
            got = list(ex.map(lambda M: eigsh(M, 4, tol=1e-10, rng=1).eigenvalues.tobytes(),
                              mats))
            assert got == serial
