"""Tests for spectra.eigsh (thick-restart Lanczos) against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from spectra import ConvergenceWarning, NonFiniteError, Operator, as_operator, eigsh
from spectra.testing import matrix_from_eigenvalues


def _spectrum(n=200, seed=0):
    g = np.random.default_rng(seed)
    return np.concatenate([[10.0, 9.0, 8.5, 8.0], g.uniform(-6.0, 6.0, n - 6), [-9.0, -7.5]])


@pytest.fixture(scope="module")
def dense():
    lam = _spectrum()
    return matrix_from_eigenvalues(lam, rng=1), np.sort(lam)


def _expected(ref, k, which):
    if which == "LA":
        return ref[::-1][:k]
    if which == "SA":
        return ref[:k]
    if which == "LM":
        return ref[np.argsort(-np.abs(ref), kind="stable")][:k]
    return np.sort(np.concatenate([ref[: k // 2], ref[::-1][: k - k // 2]]))


def _true_residuals(A, res):
    X = res.eigenvectors
    return np.linalg.norm(A @ X - X * res.eigenvalues, axis=0)


@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
@pytest.mark.parametrize("k", [1, 4, 5])
def test_matches_dense_reference(dense, which, k):
    A, ref = dense
    res = eigsh(A, k, which=which, tol=1e-10, rng=0)
    assert res.converged
    expect = _expected(ref, k, which)
    got = res.eigenvalues
    if which == "LM":  # |9| = |-9|: a tie in the ordering key, broken by rounding
        np.testing.assert_allclose(np.abs(got), np.abs(expect), rtol=1e-8)
        got, expect = np.sort(got), np.sort(expect)
    np.testing.assert_allclose(got, expect, rtol=1e-8, atol=1e-8)
    # order: LA/LM largest (magnitude) first, SA smallest first, BE ascending
    assert res.eigenvalues.shape == (k,) and res.eigenvectors.shape == (A.shape[0], k)
    # reported residuals are the true ones, and below the tolerance
    true = _true_residuals(A, res)
    np.testing.assert_allclose(res.residual_norms, true, rtol=0, atol=1e-11)
    assert np.all(true <= 1e-10 * np.abs(res.eigenvalues) + 1e-12)
    X = res.eigenvectors
    np.testing.assert_allclose(X.T @ X, np.eye(k), atol=1e-12)
    assert res.num_matvecs > 0 and "converged" in res.message


def test_clustered_top_eigenvalues():
    lam = np.concatenate([[1.0, 0.9999, 0.9998, 0.9997], np.linspace(-1, 0.9, 296)])
    A = matrix_from_eigenvalues(lam, rng=3)
    res = eigsh(A, 4, tol=1e-10, rng=4, max_matvecs=20_000)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [1.0, 0.9999, 0.9998, 0.9997], rtol=1e-9)


def test_repeated_eigenvalues_found_through_breakdown():
    # An exactly diagonal matrix with few distinct values: the Krylov space of one
    # vector is invariant after 4 steps and sees each eigenvalue once; the fresh
    # random directions after the breakdown find the copies.
    d = np.concatenate([[5.0] * 3, [4.0] * 2, [1.0] * 95])
    res = eigsh(np.diag(d), 5, tol=1e-10, rng=5, ncv=20)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [5, 5, 5, 4, 4], atol=1e-9)
    X = res.eigenvectors
    np.testing.assert_allclose(X.T @ X, np.eye(5), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repeated_eigenvalues_dense(seed):
    # multiplicity 3 at the top and 2 below it, in a rotated basis (no breakdown):
    # the copies enter through rounding and are amplified by the restarts
    g = np.random.default_rng(seed)
    lam = np.concatenate([[5.0] * 3, [4.5] * 2, g.uniform(-3, 3, 195)])
    A = matrix_from_eigenvalues(lam, rng=seed + 10)
    res = eigsh(A, 7, tol=1e-10, rng=seed)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues[:5], [5, 5, 5, 4.5, 4.5], atol=1e-9)


def test_restarts_happen_and_converge(dense):
    A, ref = dense
    res = eigsh(A, 3, ncv=8, tol=1e-10, rng=2, max_matvecs=50_000)
    assert res.converged and res.num_restarts > 3
    np.testing.assert_allclose(res.eigenvalues, ref[::-1][:3], rtol=1e-9)
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), atol=1e-11)


@pytest.mark.parametrize("n,k", [(2, 1), (6, 5), (10, 3), (25, 24)])
def test_exact_for_small_n(n, k):
    lam = np.arange(1.0, n + 1)
    A = matrix_from_eigenvalues(lam, rng=n)
    res = eigsh(A, k, which="SA", tol=1e-12, rng=0)
    assert res.converged and res.num_matvecs <= n
    np.testing.assert_allclose(res.eigenvalues, lam[:k], rtol=1e-12)
    np.testing.assert_allclose(_true_residuals(A, res), 0, atol=1e-12)


def test_full_basis_ncv_equals_n():
    lam = np.linspace(-1, 1, 40)
    A = matrix_from_eigenvalues(lam, rng=0)
    res = eigsh(A, 10, which="BE", ncv=40, tol=1e-12, rng=0)
    assert res.converged and res.num_restarts == 0 and res.num_matvecs == 40
    np.testing.assert_allclose(res.eigenvalues, np.sort(np.r_[lam[:5], lam[-5:]]), atol=1e-13)


def test_not_converged_warns(dense):
    A, ref = dense
    with pytest.warns(ConvergenceWarning, match="not converged"):
        res = eigsh(A, 3, ncv=6, max_matvecs=12, tol=1e-12, rng=0)
    assert not res.converged and res.num_matvecs <= 12
    assert "max_matvecs" in res.message
    # the best pairs are still returned with honest residuals
    assert res.eigenvalues.shape == (3,)
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), atol=1e-10)
    assert np.max(res.residual_norms) > 1e-12 * 10


def test_v0_and_no_eigenvectors(dense):
    A, ref = dense
    v0 = np.ones(A.shape[0])
    res = eigsh(A, 2, v0=v0, tol=1e-10, return_eigenvectors=False)
    assert res.eigenvectors is None and res.converged
    np.testing.assert_allclose(res.eigenvalues, ref[::-1][:2], rtol=1e-9)


def test_same_rng_same_answer(dense):
    A, _ = dense
    a = eigsh(A, 2, rng=7, tol=1e-8)
    b = eigsh(A, 2, rng=np.random.default_rng(7), tol=1e-8)
    assert a.num_matvecs == b.num_matvecs
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)


# (torch against numpy: tests/spectra/test_properties.py)
def test_torch_v0(dense):
    torch = pytest.importorskip("torch")
    A, ref = dense
    v0 = torch.ones(200, dtype=torch.float64)
    res = eigsh(torch.from_numpy(A), 1, v0=v0, tol=1e-10)
    assert res.converged and res.eigenvectors.shape == (200, 1)
    np.testing.assert_allclose(res.eigenvalues, ref[-1:], rtol=1e-9)


def test_float32_operator(dense):
    A, ref = dense
    res = eigsh(A.astype(np.float32), 2, tol=1e-5, rng=0)
    assert res.converged and res.eigenvectors.dtype == np.float32
    np.testing.assert_allclose(res.eigenvalues, ref[::-1][:2], rtol=1e-4)


def _tri(m):
    return sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])


def test_sparse_and_linear_operator():
    # a 17 x 23 grid: no exactly repeated eigenvalues (a square grid has doubles, which
    # a single-vector Krylov method finds only through rounding; see the Notes of eigsh)
    L = (sp.kron(_tri(17), sp.identity(23)) + sp.kron(sp.identity(17), _tri(23))).tocsr()
    ref = np.linalg.eigvalsh(L.toarray())
    res = eigsh(L, 3, which="SA", tol=1e-10, rng=0, max_matvecs=20_000)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, ref[:3], rtol=1e-8)
    res_lo = eigsh(aslinearoperator(L), 1, tol=1e-10, rng=0)
    np.testing.assert_allclose(res_lo.eigenvalues, ref[-1:], rtol=1e-9)
    op = Operator.from_matvec(lambda v: L @ v, L.shape, dtype=np.float64, symmetric=True)
    np.testing.assert_allclose(eigsh(op, 1, tol=1e-10, rng=0).eigenvalues, ref[-1:], rtol=1e-9)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("k", [0, -1, 11, 12])
def test_k_out_of_range(k):
    with pytest.raises(ValueError, match=r"\[1, 10\]"):
        eigsh(np.eye(10), k)


# ------------------------------------------------------------------ k = n: dense solve
@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_all_eigenpairs_match_numpy_eigh(n, which):
    lam = np.array([3.0, -4.0, 1.0, -0.5, 2.0])[:n]
    A = matrix_from_eigenvalues(lam, rng=n)
    ref, U = np.linalg.eigh(A)
    res = eigsh(A, n, which=which, rng=0)
    assert res.converged and res.num_matvecs == n and res.num_restarts == 0
    assert "exact" in res.message
    np.testing.assert_allclose(res.eigenvalues, _expected(ref, n, which), rtol=1e-12,
                               atol=1e-12)
    X = res.eigenvectors
    assert X.shape == (n, n)
    np.testing.assert_allclose(np.abs(X.T @ U).max(axis=1), 1, atol=1e-10)  # numpy's, up to sign
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), atol=1e-12)
    assert np.all(res.residual_norms < 1e-12)


def test_dense_path_orders_like_the_iterative_path():
    # k = n (dense) and k = n - 1 (iterative, full basis) order the values alike
    lam = np.array([5.0, -6.0, 1.0, 2.0, -0.5, 4.0])
    A = matrix_from_eigenvalues(lam, rng=3)
    for which in ("LA", "SA", "LM"):
        full = eigsh(A, 6, which=which, rng=0).eigenvalues
        part = eigsh(A, 5, which=which, tol=1e-12, rng=0).eigenvalues
        np.testing.assert_allclose(full[:5], part, atol=1e-10)


def test_dense_path_counts_products_and_keeps_the_backend():
    torch = pytest.importorskip("torch")
    A = torch.tensor(matrix_from_eigenvalues([1.0, 2.0, 3.0], rng=0), dtype=torch.float32)
    op = as_operator(A)
    res = eigsh(op, 3, which="SA")
    assert op.num_matvecs == 3 == res.num_matvecs
    assert isinstance(res.eigenvectors, torch.Tensor) and res.eigenvectors.dtype == torch.float32
    np.testing.assert_allclose(res.eigenvalues, [1, 2, 3], rtol=1e-5)
    assert eigsh(A, 3, return_eigenvectors=False).eigenvectors is None


def test_dense_path_refuses_asymmetry_and_nan():
    A = np.array([[1.0, 2.0], [0.0, 1.0]])
    op = Operator.from_matvec(lambda v: A @ v, (2, 2), dtype=np.float64, symmetric=True)
    with pytest.raises(ValueError, match="symmetric"):
        eigsh(op, 2)
    bad = Operator.from_matvec(lambda v: v * np.nan, (2, 2), dtype=np.float64, symmetric=True)
    with pytest.raises(NonFiniteError, match="NaN or Inf"):
        eigsh(bad, 2)


@pytest.mark.parametrize("k", [1.5, "2", True])
def test_k_not_integer(k):
    with pytest.raises(TypeError, match="integer"):
        eigsh(np.eye(10), k)


@pytest.mark.parametrize("which", ["LR", "la", None])
def test_bad_which(which):
    with pytest.raises(ValueError, match="which"):
        eigsh(np.eye(10), 1, which=which)


@pytest.mark.parametrize("tol", [0.0, -1e-3, np.nan, np.inf])
def test_bad_tol(tol):
    with pytest.raises(ValueError, match="tol"):
        eigsh(np.eye(10), 1, tol=tol)


def test_bad_budget_and_ncv():
    A = np.diag(np.arange(1.0, 51))
    with pytest.raises(ValueError, match="max_matvecs"):
        eigsh(A, 2, ncv=10, max_matvecs=9)
    with pytest.raises(TypeError, match="max_matvecs"):
        eigsh(A, 2, max_matvecs=100.0)
    with pytest.raises(ValueError, match="ncv"):
        eigsh(A, 5, ncv=5)


def test_non_symmetric_refused():
    A = np.triu(np.ones((20, 20)))
    with pytest.raises(ValueError, match="symmetric"):
        eigsh(A, 1)
    op = Operator.from_matvec(lambda v: A @ v, (20, 20), dtype=np.float64)
    with pytest.raises(ValueError, match="symmetric"):
        eigsh(op, 1)


def test_non_finite_product_named():
    def bad(v):
        out = v.copy()
        if bad.calls >= 3:
            out[0] = np.nan
        bad.calls += 1
        return out

    bad.calls = 0
    op = Operator.from_matvec(bad, (30, 30), dtype=np.float64, symmetric=True)
    with pytest.raises(ValueError, match=r"NaN or Inf \(product 4 of this"):
        eigsh(op, 1, rng=0)


def test_bad_v0():
    A = np.diag(np.arange(1.0, 31))
    with pytest.raises(ValueError, match="shape"):
        eigsh(A, 1, v0=np.ones(29))
    with pytest.raises(ValueError, match="zero"):
        eigsh(A, 1, v0=np.zeros(30))
    with pytest.raises(ValueError, match="NaN"):
        eigsh(A, 1, v0=np.full(30, np.nan))


def test_wrapped_operator_is_not_mutated():
    A = np.diag(np.arange(1.0, 31))
    op = as_operator(A)
    res = eigsh(op, 1, tol=1e-10, rng=0)
    assert op.num_matvecs == res.num_matvecs


# ------------------------------------------------------------------ block Lanczos
def _laplacian(m):
    return (sp.kron(_tri(m), sp.identity(m)) + sp.kron(sp.identity(m), _tri(m))).tocsr()


@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
@pytest.mark.parametrize("b", [2, 3])
def test_block_matches_dense_reference(dense, which, b):
    A, ref = dense
    res = eigsh(A, 4, which=which, tol=1e-10, rng=0, block_size=b)
    assert res.converged and (res.num_matvecs - 4) % b == 0  # blocks + the k-product check
    got, expect = res.eigenvalues, _expected(ref, 4, which)
    if which == "LM":  # |9| = |-9|: a tie in the ordering key
        got, expect = np.sort(got), np.sort(expect)
    np.testing.assert_allclose(got, expect, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), rtol=0, atol=1e-11)
    X = res.eigenvectors
    np.testing.assert_allclose(X.T @ X, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("k,b,which", [(3, 2, "SA"), (6, 2, "SA"), (6, 3, "LA"), (3, 3, "LA")])
def test_block_finds_double_eigenvalues_of_square_grid(k, b, which):
    # square grid: lambda_ij = lambda_ji, so the top/bottom pairs are exact doubles that
    # a single start vector sees only once (block_size=1 returns lambda_1, lambda_2, lambda_4)
    L = _laplacian(24)
    ref = np.linalg.eigvalsh(L.toarray())
    expect = ref[:k] if which == "SA" else ref[::-1][:k]
    res = eigsh(L, k, which=which, tol=1e-10, rng=0, block_size=b, max_matvecs=50_000)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, expect, rtol=1e-8)
    # block_size=1 finds the second copy through the deflated check (test_krylov_copies.py)
    single = eigsh(L, 3, which=which, tol=1e-10, rng=0)
    np.testing.assert_allclose(single.eigenvalues, expect[:3], rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_block_triple_eigenvalue_at_the_top(seed):
    g = np.random.default_rng(seed)
    lam = np.concatenate([[5.0] * 3, g.uniform(-3, 4, 197)])
    A = matrix_from_eigenvalues(lam, rng=seed + 20)
    res = eigsh(A, 3, tol=1e-10, rng=seed, block_size=3)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [5, 5, 5], atol=1e-9)
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), atol=1e-11)


def test_block_restarts_with_small_ncv(dense):
    A, ref = dense
    res = eigsh(A, 3, ncv=9, tol=1e-10, rng=2, block_size=3, max_matvecs=50_000)
    assert res.converged and res.num_restarts > 3
    np.testing.assert_allclose(res.eigenvalues, ref[::-1][:3], rtol=1e-9)
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), atol=1e-11)
    with pytest.raises(ValueError, match="k \\+ block_size"):
        eigsh(A, 3, ncv=4, block_size=2)


def test_block_uses_matmat_and_small_n_is_exact():
    A = np.diag(np.arange(1.0, 101.0))
    calls = {"mv": 0, "mm": 0}

    def mv(v):
        calls["mv"] += 1
        return A @ v

    def mm(V):
        calls["mm"] += 1
        return A @ V

    op = Operator.from_matvec(mv, A.shape, dtype=np.float64, symmetric=True, matmat=mm)
    res = eigsh(op, 2, tol=1e-10, rng=0, block_size=4)
    # the block steps and the explicit residual check (one block of k = 2) use matmat
    assert calls["mv"] == 0 and (calls["mm"] - 1) * 4 + 2 == res.num_matvecs
    np.testing.assert_allclose(res.eigenvalues, [100, 99], rtol=1e-10)
    # n < k + 2 b: no room for a residual block, the full single-vector basis is exact
    small = eigsh(np.diag(np.arange(1.0, 8.0)), 3, block_size=3, rng=0, tol=1e-12)
    np.testing.assert_allclose(small.eigenvalues, [7, 6, 5], rtol=1e-12)


def test_block_non_finite_product_named():
    def bad(V):
        out = V.copy()
        if bad.calls >= 2:
            out[0, 1] = np.nan
        bad.calls += 1
        return out

    bad.calls = 0
    op = Operator.from_matvec(lambda v: v, (30, 30), dtype=np.float64, symmetric=True,
                              matmat=bad)
    with pytest.raises(ValueError, match=r"NaN or Inf \(products 5 to 6 of this"):
        eigsh(op, 1, rng=0, block_size=2)


def test_block_not_converged_warns(dense):
    A, _ = dense
    with pytest.warns(ConvergenceWarning, match="not converged"):
        res = eigsh(A, 3, ncv=8, max_matvecs=17, tol=1e-12, rng=0, block_size=2)
    assert not res.converged and res.num_matvecs <= 17
    np.testing.assert_allclose(res.residual_norms, _true_residuals(A, res), atol=1e-10)


@pytest.mark.parametrize("b", [0, 1.5, "auto", True])
def test_bad_block_size(b):
    with pytest.raises((TypeError, ValueError), match="block_size"):
        eigsh(np.eye(10), 1, block_size=b)
