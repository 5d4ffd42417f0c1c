"""eigsh: "converged" means the explicit residuals, and copies of multiple eigenvalues
are found or flagged (issue 15)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from spectra import ConvergenceWarning, Operator, as_operator, eigsh
from spectra.testing import matrix_from_eigenvalues


def _true(A, res):
    X = res.eigenvectors
    return np.linalg.norm(A @ X - X * res.eigenvalues, axis=0)


def _grid(m):
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    return (sp.kron(T, sp.identity(m)) + sp.kron(sp.identity(m), T)).tocsr()


LAM5 = np.concatenate([[5.0, 5.0, 5.0, 4.0, 3.846], np.linspace(-1.0, 3.5, 95)])


# ------------------------------------------------------------------ explicit residuals
def test_converged_means_the_true_residual():
    # a (declared symmetric) operator with a small non-symmetric error: the Lanczos
    # estimates go to zero while the true residuals stay near 3e-7; on main this
    # reported converged=True with residual estimates 1e-10
    g = np.random.default_rng(0)
    A = matrix_from_eigenvalues(np.linspace(1, 3, 100), rng=0)
    M = A + 1e-7 * g.standard_normal((100, 100))
    op = Operator.from_matvec(lambda v: M @ v, (100, 100), dtype=np.float64, symmetric=True)
    with pytest.warns(ConvergenceWarning, match="not converged"):
        res = eigsh(op, 2, tol=1e-10, rng=0)
    assert not res.converged and "explicit" in res.message
    np.testing.assert_allclose(res.residual_norms, _true(M, res), rtol=1e-6)
    assert op.num_matvecs == res.num_matvecs


def test_explicit_check_is_counted_and_reported():
    A = matrix_from_eigenvalues(np.linspace(-2, 7, 120), rng=2)
    op = as_operator(A)
    res = eigsh(op, 3, tol=1e-10, rng=0, check_copies=False)
    assert res.converged and "explicit residuals" in res.message
    assert op.num_matvecs == res.num_matvecs
    np.testing.assert_allclose(res.residual_norms, _true(A, res), rtol=1e-6, atol=1e-14)
    assert np.all(res.residual_norms <= 1e-10 * np.abs(res.eigenvalues))


# ------------------------------------------------------------------ missed copies
@pytest.mark.parametrize("rotated", [True, False])
def test_triple_eigenvalue_k3(rotated):
    # issue 15: eigsh(k=3) on eigenvalues (5, 5, 5, ...) returned [3.846, 4, 5]
    A = matrix_from_eigenvalues(LAM5, rng=0) if rotated else np.diag(LAM5)
    op = as_operator(A)
    res = eigsh(op, 3, tol=1e-10, rng=0)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [5, 5, 5], rtol=1e-9)
    X = res.eigenvectors
    np.testing.assert_allclose(X.T @ X, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(res.residual_norms, _true(A, res), rtol=1e-5, atol=1e-13)
    assert op.num_matvecs == res.num_matvecs


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_grid_laplacian_both_copies(which):
    # issue 15: the 8 x 8 grid Laplacian missed the second 7.411 (and 0.589 at the bottom)
    L = _grid(8)
    ref = np.linalg.eigvalsh(L.toarray())
    expect = ref[::-1][:3] if which == "LA" else ref[:3]
    res = eigsh(L, 3, which=which, tol=1e-10, rng=0)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, expect, rtol=1e-9)


@pytest.mark.parametrize("which", ["LM", "BE"])
def test_copies_for_lm_and_be(which):
    lam = np.concatenate([[-6.0, -6.0, 5.5], np.linspace(-4, 4, 97)])
    A = matrix_from_eigenvalues(lam, rng=1)
    ref = np.sort(lam)
    res = eigsh(A, 2 if which == "LM" else 3, which=which, tol=1e-10, rng=0)
    assert res.converged
    if which == "LM":
        np.testing.assert_allclose(res.eigenvalues, [-6, -6], rtol=1e-9)
    else:  # one from the bottom... k // 2 = 1 bottom value, 2 top values
        np.testing.assert_allclose(res.eigenvalues, np.r_[ref[:1], ref[-2:]], rtol=1e-9)


def test_pyamg_bar_k10():
    # issue 15: pyamg's 'bar' at k = 10 missed the second copy of 1873.47
    gallery = pytest.importorskip("pyamg.gallery")
    A = gallery.load_example("bar")["A"].tocsr().astype(float)
    ref = np.linalg.eigvalsh(A.toarray())[::-1][:10]
    res = eigsh(A, 10, tol=1e-8, rng=0)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, ref, rtol=1e-8)
    assert np.sum(np.isclose(res.eigenvalues, 1873.4675, rtol=1e-6)) == 2


def test_unresolvable_cluster_is_flagged_with_block_size():
    # the wanted set ends in a cluster of relative width 1e-7: the check cannot exclude
    # a copy within its cap, and says so with the block_size to use
    lam = np.concatenate([[10.0, 9.0, 9.0 - 1e-6], np.linspace(0, 8, 197)])
    A = matrix_from_eigenvalues(lam, rng=3)
    with pytest.warns(ConvergenceWarning, match="block_size=2"):
        res = eigsh(A, 2, tol=1e-10, rng=0)
    assert "may be missing" in res.message and "block_size=2" in res.message


def test_check_copies_off_keeps_the_single_vector_answer():
    res = eigsh(np.diag(LAM5), 3, tol=1e-10, rng=0, check_copies=False)
    assert "deflated" not in res.message
    on = eigsh(np.diag(LAM5), 3, tol=1e-10, rng=0)
    assert on.num_matvecs > res.num_matvecs


@pytest.mark.parametrize("n", [3, 4, 6, 8, 12])
def test_small_n_every_k_with_a_triple_eigenvalue(n):
    # small dimensions: the check's complement may be exhausted (exact) or tiny
    lam = np.r_[[5.0] * 3, np.arange(n - 3.0)]
    ref = np.sort(lam)
    for A in (np.diag(lam), matrix_from_eigenvalues(lam, rng=n)):
        for k in range(1, n):
            for which, expect in (("LA", ref[::-1][:k]), ("SA", ref[:k])):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    res = eigsh(A, k, which=which, tol=1e-10, rng=0)
                np.testing.assert_allclose(np.sort(res.eigenvalues), np.sort(expect),
                                           atol=1e-8, err_msg=f"k={k} {which}")
