r"""Numba cores of the density estimators: Gaussian smoothing and Chebyshev series.

Each core is compiled once and cached on disk (``cache=True``), runs in parallel over
grid points, and has a plain NumPy twin in ``tests/spectra/test_kernels.py``. Used by
:mod:`spectra.densities`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..backend import prefer_threadsafe_layer

prefer_threadsafe_layer()

__all__ = ["chebyshev_series", "gaussian_mixture"]


@njit(cache=True, parallel=True, fastmath=False)
def gaussian_mixture(nodes, weights, sigmas, grid):  # pragma: no cover - compiled
    r"""Evaluate :math:`\sum_j w_j \phi_{\sigma_j}(x_i - \theta_j)` on a grid.

    Parameters
    ----------
    nodes, weights, sigmas : float64 arrays, shape ``(m,)``
        Quadrature nodes, weights and the standard deviation of each node's Gaussian
        (> 0). Terms further than ``9 sigma_j`` (below ``1e-17`` relative) are skipped.
    grid : float64 array, shape ``(g,)``

    Returns
    -------
    float64 array, shape ``(g,)``
    """
    g = grid.shape[0]
    m = nodes.shape[0]
    out = np.zeros(g)
    c = 1.0 / math.sqrt(2.0 * math.pi)
    for i in prange(g):
        x = grid[i]
        s = 0.0
        for j in range(m):
            d = x - nodes[j]
            sj = sigmas[j]
            if -9.0 * sj < d < 9.0 * sj:
                s += weights[j] * math.exp(-0.5 * (d / sj) ** 2) / sj
        out[i] = c * s
    return out


@njit(cache=True, parallel=True, fastmath=False)
def chebyshev_series(t, coeffs):  # pragma: no cover - compiled
    r"""Evaluate :math:`\sum_k c_k T_k(t_i)` by Clenshaw's recurrence.

    Parameters
    ----------
    t : float64 array, shape ``(g,)``
        Points in ``[-1, 1]``.
    coeffs : float64 array, shape ``(K,)``

    Returns
    -------
    float64 array, shape ``(g,)``
    """
    g = t.shape[0]
    K = coeffs.shape[0]
    out = np.empty(g)
    for i in prange(g):
        x = t[i]
        b1 = 0.0
        b2 = 0.0
        for k in range(K - 1, 0, -1):
            b0 = coeffs[k] + 2.0 * x * b1 - b2
            b2 = b1
            b1 = b0
        out[i] = coeffs[0] + x * b1 - b2
    return out

