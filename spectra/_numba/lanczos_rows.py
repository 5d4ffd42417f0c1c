r"""Numba cores of the Lanczos recurrence on blocks stored row by row (CPU torch).

:func:`spectra.lanczos` keeps torch blocks probe by probe: the ``p`` Lanczos vectors are
the contiguous rows of a ``(p, n)`` array (the columns of its ``(n, p)`` view). On the
CPU these two kernels read the rows through zero-copy numpy views and do one step's
work on ``n``-vectors in two passes: the float64 dots (:func:`step_dots`: ``alpha`` and,
for a run on a complement, the coefficients along the locked rows) and the fused
update (:func:`step_update`: scale, three-term recurrence, projection and sums of
squares), where separate torch operations take about twice the memory traffic. Both
work over chunks of :data:`CHUNK` entries (in cache while every row reads them) and
add the chunks' float64 partial sums in a fixed order: the result does not depend on
threads. Compiled once and cached on disk (``cache=True``); their plain NumPy twins are
in ``tests/spectra/test_kernels.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CHUNK", "step_dots", "step_update"]

#: Entries per chunk: a chunk of every row involved stays in the first cache levels.
CHUNK = 2048


@njit(cache=True, fastmath={"reassoc", "contract"})
def step_dots(W, Q, U):  # pragma: no cover - compiled
    r"""Float64 dots of the rows of ``W`` ``(p, n)``: :math:`q_j^T w_j` and :math:`U w_j`.

    ``Q`` is ``(p, n)``, ``U`` ``(c, n)`` (``c`` may be 0).

    Returns
    -------
    a : float64 array ``(p,)``
    C : float64 array ``(c, p)``
    """
    p, n = W.shape
    c = U.shape[0]
    a = np.zeros(p)
    C = np.zeros((c, p))
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        for j in range(p):
            w, q = W[j, lo:hi], Q[j, lo:hi]
            s = 0.0
            for i in range(w.shape[0]):
                s += np.float64(q[i]) * np.float64(w[i])
            a[j] += s
            for u in range(c):
                x = U[u, lo:hi]
                s = 0.0
                for i in range(w.shape[0]):
                    s += np.float64(x[i]) * np.float64(w[i])
                C[u, j] += s
    return a, C


@njit(cache=True, fastmath={"reassoc", "contract"})
def step_update(W, inv, Q, a, Qp, b, U, C):  # pragma: no cover - compiled
    r"""In place :math:`w_j \leftarrow \mathrm{inv}\,w_j - a_j q_j - b_j q^{prev}_j - U^T C_{:j}`.

    Rows of ``(p, n)`` arrays ``W``, ``Q``, ``Qp``; ``U`` ``(c, n)``; the new entries
    are formed in float64 and stored in ``W``'s dtype.

    Returns
    -------
    float64 array ``(p,)``
        Sums of squares of the stored rows of ``W``.
    """
    p, n = W.shape
    c = U.shape[0]
    ss = np.zeros(p)
    tmp = np.empty(CHUNK)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        m = hi - lo
        t = tmp[:m]
        for j in range(p):
            w, q, qp = W[j, lo:hi], Q[j, lo:hi], Qp[j, lo:hi]
            aj, bj = a[j], b[j]
            for i in range(m):
                t[i] = inv * np.float64(w[i]) - aj * np.float64(q[i]) - bj * np.float64(qp[i])
            u = 0
            while u + 4 <= c:  # four locked rows per sweep of the piece: fewer stores
                x0, x1, x2, x3 = U[u, lo:hi], U[u + 1, lo:hi], U[u + 2, lo:hi], U[u + 3, lo:hi]
                c0, c1, c2, c3 = C[u, j], C[u + 1, j], C[u + 2, j], C[u + 3, j]
                for i in range(m):
                    t[i] -= (c0 * np.float64(x0[i]) + c1 * np.float64(x1[i])
                             + c2 * np.float64(x2[i]) + c3 * np.float64(x3[i]))
                u += 4
            while u < c:
                x = U[u, lo:hi]
                cu = C[u, j]
                for i in range(m):
                    t[i] -= cu * np.float64(x[i])
                u += 1
            s = 0.0
            for i in range(m):
                w[i] = t[i]
                v = np.float64(w[i])
                s += v * v
            ss[j] += s
    return ss
