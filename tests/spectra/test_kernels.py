"""Each Numba kernel against a plain NumPy twin."""

import numpy as np
from numpy.polynomial import chebyshev as C

from spectra._kernels import chebyshev_series, gaussian_mixture


def gaussian_mixture_twin(nodes, weights, grid, sigma):
    d = grid[:, None] - nodes[None, :]
    return (weights * np.exp(-0.5 * (d / sigma) ** 2)).sum(axis=1) / (sigma * np.sqrt(2 * np.pi))


def test_gaussian_mixture_matches_twin():
    g = np.random.default_rng(0)
    nodes, weights = g.normal(size=300), g.uniform(size=300)
    grid = np.linspace(-4, 4, 501)
    for sigma in (1e-3, 0.05, 0.7):
        np.testing.assert_allclose(
            gaussian_mixture(nodes, weights, grid, sigma),
            gaussian_mixture_twin(nodes, weights, grid, sigma),
            rtol=1e-12, atol=1e-14,
        )


def test_chebyshev_series_matches_numpy():
    g = np.random.default_rng(1)
    t = np.cos(np.linspace(0, np.pi, 333))
    for K in (1, 2, 7, 120):
        c = g.standard_normal(K)
        np.testing.assert_allclose(chebyshev_series(t, c), C.chebval(t, c), rtol=1e-10, atol=1e-12)
