"""Each Numba kernel against a plain NumPy twin."""

import numpy as np
from numpy.polynomial import chebyshev as C

from spectra._kernels import chebyshev_series, gaussian_mixture


def gaussian_mixture_twin(nodes, weights, sigmas, grid):
    d = grid[:, None] - nodes[None, :]
    return (weights / sigmas * np.exp(-0.5 * (d / sigmas) ** 2)).sum(axis=1) / np.sqrt(2 * np.pi)


def test_gaussian_mixture_matches_twin():
    g = np.random.default_rng(0)
    nodes, weights = g.normal(size=300), g.uniform(size=300)
    grid = np.linspace(-4, 4, 501)
    for sigma in (1e-3, 0.05, 0.7):
        sigmas = sigma * g.uniform(0.5, 2.0, size=300)
        np.testing.assert_allclose(
            gaussian_mixture(nodes, weights, sigmas, grid),
            gaussian_mixture_twin(nodes, weights, sigmas, grid),
            rtol=1e-12, atol=1e-14,
        )


def test_chebyshev_series_matches_numpy():
    g = np.random.default_rng(1)
    t = np.cos(np.linspace(0, np.pi, 333))
    for K in (1, 2, 7, 120):
        c = g.standard_normal(K)
        np.testing.assert_allclose(chebyshev_series(t, c), C.chebval(t, c), rtol=1e-10, atol=1e-12)


def test_lanczos_block_kernels_match_numpy():
    from spectra._kernels import column_dots, scale_columns, three_term_update

    g = np.random.default_rng(2)
    for n, p, dtype in ((1, 1, np.float64), (1001, 7, np.float64), (513, 3, np.float32)):
        Q, W, P = (g.standard_normal((n, p)).astype(dtype) for _ in range(3))
        a, b = g.standard_normal(p), g.standard_normal(p)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(column_dots(Q, W), np.einsum("ij,ij->j", Q, W), rtol=tol)
        twin = W - Q * a - P * b
        ss = three_term_update(W, Q, P, a, b)
        np.testing.assert_allclose(W, twin, rtol=tol, atol=tol)
        np.testing.assert_allclose(ss, (twin.astype(np.float64) ** 2).sum(axis=0), rtol=tol)
        s = g.standard_normal(p)
        scale_columns(W, s)
        np.testing.assert_allclose(W, twin * s, rtol=tol, atol=tol)
