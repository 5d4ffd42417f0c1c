"""The pilot of deflated SLQ: converged Ritz pairs without reorthogonalisation.

:func:`spectra.krylov.ritz.converged_pairs` merges ghost copies and keeps only pairs that
pass the residual test; :func:`spectra.lanczos` with ``locked`` runs on the complement.
Both against dense references.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import eigh_tridiagonal

from spectra import density, lanczos
from spectra.krylov.ritz import converged_pairs, orthonormalise_rows
from spectra.quadrature import deflate_tolerance
from spectra.testing import matrix_from_eigenvalues

OUT = np.array([10.0, 20.0, 50.0, 100.0])


@pytest.fixture(scope="module")
def spiked():
    g = np.random.default_rng(11)
    lam = np.sort(np.r_[g.uniform(0.0, 1.0, 396), OUT])
    return matrix_from_eigenvalues(lam, rng=12), lam


def test_converged_pairs_merge_ghosts_of_a_run_without_reorthogonalisation(spiked):
    A, lam = spiked
    res = lanczos(A, 120, v0=np.random.default_rng(0).standard_normal(400), reorth="none",
                  keep_basis=True)
    theta = eigh_tridiagonal(res.alpha[0], res.beta[0, :-1])[0]
    assert np.sum(np.abs(theta - 100.0) < 1e-8) >= 2  # the run has ghosts of 100
    tol = deflate_tolerance(np.float64)
    vals, U = converged_pairs(res, tol, like=A)
    # each outlier at most once, and the converged ones are all four
    np.testing.assert_allclose(vals[-4:], OUT, rtol=1e-12)
    assert np.all(np.abs(vals[:-4] - 100.0) > 1e-6)  # no second copy of any outlier
    for v in vals:  # every deflated value is an eigenvalue, once
        assert np.min(np.abs(lam - v)) <= 1e-10 * lam.max()
    assert np.unique(np.round(vals, 8)).size == vals.size
    np.testing.assert_allclose(U @ U.T, np.eye(vals.size), atol=1e-12)
    R = A @ U.T - U.T * vals[None, :]
    assert np.max(np.linalg.norm(R, axis=0)) <= 2 * tol * lam.max()


def test_converged_pairs_in_float32_torch_are_accurate_to_the_tolerance():
    torch = pytest.importorskip("torch")
    n = 30_000
    d = torch.linspace(-1.0, 1.0, n, dtype=torch.float32)
    d[:4] = torch.tensor(OUT, dtype=torch.float32)
    from spectra import Operator

    op = Operator.from_matvec(lambda v: d * v, (n, n), dtype=torch.float32, symmetric=True,
                              matmat=lambda V: d[:, None] * V)
    v0 = torch.from_numpy(np.random.default_rng(1).standard_normal(n)).float()
    res = lanczos(op, 40, v0=v0, reorth="none", keep_basis=True)
    tol = deflate_tolerance(torch.float32)
    vals, U = converged_pairs(res, tol, like=op)
    assert vals.size >= 3
    for v in vals:
        assert np.min(np.abs(OUT - v)) <= tol * 100.0
    assert U.dtype == torch.float32 and tuple(U.shape) == (vals.size, n)
    G = U.double() @ U.double().T
    np.testing.assert_allclose(G.numpy(), np.eye(vals.size), atol=1e-6)
    R = (d[None, :] * U - torch.from_numpy(vals).float()[:, None] * U).double()
    assert float(R.norm(dim=1).max()) <= 4 * tol * 100.0


def test_converged_pairs_agree_from_a_full_basis_and_from_kept_blocks(spiked):
    # the same pairs from the (p, k, n) basis of a full run and from a plain run's blocks
    A, lam = spiked
    v0 = np.random.default_rng(4).standard_normal(400)
    full = converged_pairs(lanczos(A, 40, v0=v0, reorth="full"), 1e-7, like=A)
    plain = converged_pairs(lanczos(A, 40, v0=v0, reorth="none", keep_basis=True), 1e-7,
                            like=A)
    np.testing.assert_allclose(full[0][-4:], OUT, rtol=1e-12)
    np.testing.assert_allclose(plain[0][-4:], OUT, rtol=1e-12)
    for (_, U) in (full, plain):  # eigenvectors up to sign
        np.testing.assert_allclose(np.abs(np.sum(full[1][-4:] * U[-4:], axis=1)), 1.0,
                                   atol=1e-10)


def test_converged_pairs_keep_nothing_when_nothing_converged(spiked):
    A, _ = spiked
    res = lanczos(A, 3, v0=np.ones(400), reorth="none", keep_basis=True)
    vals, U = converged_pairs(res, 1e-7, like=A)
    assert vals.size == 0 and U is None


def test_orthonormalise_rows_in_place():
    g = np.random.default_rng(3)
    U = np.linalg.qr(g.standard_normal((500, 4)))[0].T.copy()
    U += 1e-6 * g.standard_normal(U.shape)
    before = U.copy()
    out = orthonormalise_rows(U)
    assert out is U
    np.testing.assert_allclose(U @ U.T, np.eye(4), atol=1e-13)
    assert np.max(np.abs(U - before)) < 1e-5  # a small correction, rows keep their order


def test_lanczos_on_locked_complement_equals_the_projected_matrix(spiked):
    A, lam = spiked
    w, V = np.linalg.eigh(A)
    U = V[:, -3:].T.copy()  # three outliers' eigenvectors, as rows
    P = np.eye(400) - U.T @ U
    v0 = np.random.default_rng(5).standard_normal((400, 2))
    # 10 steps: before the outlier 10 converges (after it the coefficients amplify rounding)
    got = lanczos(A, 10, v0=v0, reorth="full", locked=U)
    ref = lanczos(P @ A @ P, 10, v0=P @ v0, reorth="full")
    np.testing.assert_allclose(got.alpha, ref.alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.beta, ref.beta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.start_norms, np.linalg.norm(P @ v0, axis=0), rtol=1e-12)
    # the run never sees the locked eigenvalues
    long = lanczos(A, 60, v0=v0, reorth="none", locked=U)
    theta = eigh_tridiagonal(long.alpha[0], long.beta[0, :-1])[0]
    assert theta.max() < 10.0 + 1e-8
    torch = pytest.importorskip("torch")  # the CPU row kernels: the same run
    t = lanczos(torch.from_numpy(A), 10, v0=torch.from_numpy(v0), reorth="full",
                locked=torch.from_numpy(U))
    np.testing.assert_allclose(t.alpha, got.alpha, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(t.beta, got.beta, rtol=1e-12, atol=1e-13)


def test_lanczos_refuses_locked_rows_of_the_wrong_shape(spiked):
    A, _ = spiked
    with pytest.raises(ValueError, match=r"locked must be a \(c, 400\) array"):
        lanczos(A, 5, locked=np.zeros((400, 2)), rng=0)


def test_keep_basis_without_reorthogonalisation_stores_the_lanczos_vectors(spiked):
    A, _ = spiked
    v0 = np.random.default_rng(2).standard_normal(400)
    res = lanczos(A, 10, v0=v0, reorth="none", keep_basis=True)
    assert len(res.basis) == 10 and all(b.shape == (400, 1) for b in res.basis)
    np.testing.assert_allclose(res.basis[0][:, 0], v0 / np.linalg.norm(v0), rtol=1e-14)
    Q = np.hstack(res.basis)  # the Lanczos relation, whatever the orthogonality
    T = np.diag(res.alpha[0]) + np.diag(res.beta[0, :-1], 1) + np.diag(res.beta[0, :-1], -1)
    np.testing.assert_allclose((A @ Q)[:, :-1], (Q @ T)[:, :-1], atol=1e-12)
    assert lanczos(A, 10, v0=v0, reorth="none").basis is None
    # the blocks are the run's own vectors: the same as a full run's basis at step 1
    full = lanczos(A, 10, v0=v0, reorth="full", keep_basis=True)
    assert full.basis.shape == (1, 10, 400)
    np.testing.assert_allclose(full.basis[0, :2], Q[:, :2].T, rtol=1e-12, atol=1e-14)


def test_float32_density_deflates_exact_outliers_without_reorthogonalisation():
    torch = pytest.importorskip("torch")
    n = 20_000
    d = torch.linspace(0.0, 1.0, n, dtype=torch.float32)
    d[:4] = torch.tensor(OUT, dtype=torch.float32)
    from spectra import Operator

    op = Operator.from_matvec(lambda v: d * v, (n, n), dtype=torch.float32, symmetric=True,
                              matmat=lambda V: d[:, None] * V)
    den = density(op, num_probes=4, num_steps=30, reorth="none", rng=0)
    assert den.deflated.size >= 3
    tol = deflate_tolerance(torch.float32)
    for v in den.deflated:
        assert np.min(np.abs(OUT - v)) <= tol * 100.0
    c = den.deflated.size
    np.testing.assert_allclose(den.weights[:c], 1.0 / n, rtol=1e-12)
    np.testing.assert_allclose(den.weights.sum(), 1.0, rtol=1e-10)
    # the complement's rules see no deflated outlier again
    rest = den.nodes[c:]
    for v in den.deflated:
        assert np.min(np.abs(rest - v)) > 1e-3 * v


@pytest.mark.parametrize("n", [5, 4096 * 16 + 4097, 200_003])
def test_gram_and_combine_of_rows_match_float64(n):
    from spectra.krylov.ritz import _combine, _gram

    g = np.random.default_rng(n)
    X = g.standard_normal((6, n)).astype(np.float32)
    X64 = X.astype(np.float64)
    coef = g.standard_normal((2, 6)).astype(np.float32)
    torch = pytest.importorskip("torch")
    Y64 = coef.astype(np.float64) @ X64
    for rows in ([x for x in X], [torch.from_numpy(x) for x in X]):
        c = coef if isinstance(rows[0], np.ndarray) else torch.from_numpy(coef)
        G = _gram(rows, c)  # the Gram of coef @ X, without forming it
        np.testing.assert_allclose(G, Y64 @ Y64.T, rtol=0, atol=1e-6 * n)
        U = np.asarray(_combine(rows, c))
        np.testing.assert_allclose(U, Y64, rtol=1e-5, atol=1e-5)
