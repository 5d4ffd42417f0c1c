r"""Numba cores of the batched Lanczos recurrence (:func:`spectra.lanczos`).

One pass over C-contiguous ``(n, p)`` blocks without temporaries, parallel over row
chunks; compiled once and cached on disk (``cache=True``), each with a plain NumPy twin
in ``tests/spectra/test_kernels.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backend import prefer_threadsafe_layer

prefer_threadsafe_layer()

__all__ = ["column_dots", "project_small", "scale_columns", "three_term_update"]

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


@njit(cache=True)
def project_small(V, j, w, col, dgks):  # pragma: no cover - compiled
    r"""Orthogonalise ``w`` in place against the rows ``0..j`` of ``V`` (small ``n``).

    The lean path of :class:`spectra.krylov._basis.Basis`: the known couplings
    ``col = H[:j, j]`` and :math:`\alpha_j = v_j^T w` are removed first, then one
    classical Gram--Schmidt pass against rows ``0..j``, and a second one when the
    first leaves less than ``dgks`` of the norm (DGKS).  Sums in float64.

    Returns
    -------
    h : float64 array, shape ``(j + 1,)``
        Coefficients of ``w`` along the rows (``h[j]`` includes :math:`\alpha_j`).
    b : float
        Norm of the orthogonalised ``w`` (NaN when the input held NaN or Inf).
    """
    n = w.shape[0]
    for i in range(j):
        c = col[i]
        if c != 0.0:
            for t in range(n):
                w[t] -= c * V[i, t]
    alpha = 0.0
    for t in range(n):
        alpha += V[j, t] * w[t]
    w2 = 0.0
    for t in range(n):
        w[t] -= alpha * V[j, t]
        w2 += w[t] * w[t]
    h = np.zeros(j + 1)
    Vj = V[: j + 1]
    for _ in range(2):
        hp = np.dot(Vj, w)  # BLAS gemv, in V's dtype
        w -= np.dot(hp, Vj)
        hh = 0.0
        for i in range(j + 1):
            h[i] += hp[i]
            hh += hp[i] * hp[i]
        if not (w2 - hh < dgks * dgks * w2):
            break
        w2 -= hh
    h[j] += alpha
    b = 0.0
    for t in range(n):
        b += w[t] * w[t]
    if not np.isfinite(alpha + w2):
        b = np.nan
    return h, np.sqrt(b)
