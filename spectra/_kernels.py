"""Numba cores for the small hot loops of the density estimators.

Each kernel is compiled once and cached on disk (``cache=True``), runs in parallel
over grid points, and has a plain NumPy twin in ``tests/spectra/test_kernels.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "chebyshev_series",
    "column_dots",
    "gaussian_mixture",
    "scale_columns",
    "three_term_update",
]


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


_CHUNKS = 32


@njit(cache=True, parallel=True)
def three_term_update(W, Q, Qprev, a, b):  # pragma: no cover - compiled
    r"""In place :math:`W \leftarrow W - Q\,\mathrm{diag}(a) - Q_{prev}\,\mathrm{diag}(b)`.

    One pass over the C-contiguous ``(n, p)`` blocks (no temporaries), parallel over
    row chunks, each accumulating its column sums of squares locally.

    Returns
    -------
    float64 array, shape ``(p,)``
        Column sums of squares of the updated ``W``.
    """
    n, p = W.shape
    Wf, Qf, Pf = W.ravel(), Q.ravel(), Qprev.ravel()
    step = (n + _CHUNKS - 1) // _CHUNKS
    partial = np.zeros((_CHUNKS, p))
    for c in prange(_CHUNKS):
        acc = np.zeros(p)
        for i in range(c * step, min(n, (c + 1) * step)):
            base = i * p
            for j in range(p):
                w = Wf[base + j] - a[j] * Qf[base + j] - b[j] * Pf[base + j]
                Wf[base + j] = w
                acc[j] += w * w
        partial[c, :] = acc
    return partial.sum(axis=0)


@njit(cache=True, parallel=True)
def column_dots(Q, W):  # pragma: no cover - compiled
    r"""Column inner products :math:`(Q^T W)_{jj}` of two C-contiguous ``(n, p)`` blocks."""
    n, p = W.shape
    Wf, Qf = W.ravel(), Q.ravel()
    step = (n + _CHUNKS - 1) // _CHUNKS
    partial = np.zeros((_CHUNKS, p))
    for c in prange(_CHUNKS):
        acc = np.zeros(p)
        for i in range(c * step, min(n, (c + 1) * step)):
            base = i * p
            for j in range(p):
                acc[j] += Qf[base + j] * Wf[base + j]
        partial[c, :] = acc
    return partial.sum(axis=0)


@njit(cache=True, parallel=True)
def scale_columns(W, s):  # pragma: no cover - compiled
    """In place ``W[:, j] *= s[j]``."""
    n, p = W.shape
    for i in prange(n):
        for j in range(p):
            W[i, j] *= s[j]
