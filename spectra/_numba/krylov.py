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

__all__ = ["column_dots", "scale_columns", "three_term_update"]

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
