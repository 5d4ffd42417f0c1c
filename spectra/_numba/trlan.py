r"""Numba core of :func:`spectra.eigsh` on small explicit matrices (the lean path).

:func:`lean_steps` runs several Lanczos steps of the single-vector thick-restart basis
(:class:`spectra.krylov._basis.LeanBasis`) in one compiled call: the product with a
CSR or dense matrix, its scaling by the run's power of two, the stored product, the
deflation of locked vectors, the projection of :func:`spectra._numba.krylov.project_small`
and the normalisation.  Compiled once and cached on disk (``cache=True``); its plain
NumPy twin is in ``tests/spectra/test_krylov_lean.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uintp

from .krylov import project_small

__all__ = ["BREAKDOWN", "EXHAUSTED", "NONFINITE", "lean_steps", "matvec_explicit"]

#: :func:`lean_steps` status codes (0: the target size was reached).
BREAKDOWN, EXHAUSTED, NONFINITE = 1, 2, 3


@njit(cache=True)
def matvec_explicit(indptr, indices, data, dense, v, out):  # pragma: no cover - compiled
    """``out = A v`` for a dense ``A`` (when ``dense`` has rows) or the CSR arrays.

    Row sums in float64, stored in ``out``'s dtype.  The CSR indices are read as
    unsigned (no negative-index wraparound test per entry: 2.5x faster on pyamg's
    ``bar``).
    """
    if dense.shape[0] > 0:
        out[:] = np.dot(dense, v)
        return
    for i in range(indptr.shape[0] - 1):
        acc = 0.0
        for p in range(uintp(indptr[i]), uintp(indptr[i + 1])):
            acc += data[p] * v[uintp(indices[p])]
        out[i] = acc


@njit(cache=True)
def _deflate(L, w):  # pragma: no cover - compiled
    """Remove the components of ``w`` along the rows of ``L``, twice (CGS2)."""
    if L.shape[0] == 0:
        return
    for _ in range(2):
        c = np.dot(L, w)
        w -= np.dot(c, L)


@njit(cache=True)
def lean_steps(indptr, indices, data, dense, V, W, H, L, j0, j1, dim, st,
               dgks):  # pragma: no cover - compiled
    r"""Lanczos steps at rows ``j0 .. j1 - 1`` of the basis ``V``, in place.

    Each step multiplies row ``j`` (:func:`matvec_explicit`), scales the product by
    ``st[0]`` (chosen from the first product when 0: the power of two that brings
    its largest entry into ``[1/2, 1)``), stores it in ``W[j]`` (when ``W`` has rows),
    removes the locked rows ``L``, orthogonalises against rows ``0..j``
    (:func:`~spectra._numba.krylov.project_small` with the couplings ``H[j, :j]``),
    removes ``L`` again, and writes ``H[j, j]``, the coupling ``beta = H[j, j+1]``
    (when ``j + 1 < ncv``) and row ``j + 1``.  ``st = [inv, anorm, beta, tiny]`` is
    updated in place (``anorm`` the running ``max hypot(alpha, beta, beta_prev)``).

    Returns
    -------
    status : int
        0 when row ``j1`` was reached; :data:`BREAKDOWN` (``beta`` below
        ``tiny * anorm``: row ``size`` is left for the caller's random direction),
        :data:`EXHAUSTED` (``size == dim``: ``beta = 0``) or :data:`NONFINITE`.
    size : int
        Rows in use after the last step (each step is one product).
    """
    m = H.shape[0]
    w = np.empty(V.shape[1], dtype=V.dtype)
    for j in range(j0, j1):
        matvec_explicit(indptr, indices, data, dense, V[j], w)
        if st[0] == 0.0:
            big = np.max(np.abs(w))
            if not np.isfinite(big):
                return NONFINITE, j + 1
            st[0] = 1.0 if big == 0.0 else math.ldexp(1.0, -math.frexp(big)[1])
        if st[0] != 1.0:
            w *= st[0]
        if W.shape[0] > 0:
            W[j] = w
        _deflate(L, w)
        h, b = project_small(V, j, w, H[j, :j], dgks)
        if L.shape[0] > 0:
            _deflate(L, w)
            b = np.sqrt(np.dot(w, w))
        if not (np.isfinite(b) and np.all(np.isfinite(h))):
            return NONFINITE, j + 1
        H[j, j] = h[j]
        st[1] = max(st[1], math.hypot(math.hypot(h[j], b), st[2]))
        if j + 1 >= dim:
            st[2] = 0.0
            return EXHAUSTED, j + 1
        if b <= st[3] * max(st[1], 1e-300):
            st[2] = 0.0
            if j + 1 < m:
                H[j, j + 1] = H[j + 1, j] = 0.0
            return BREAKDOWN, j + 1
        V[j + 1] = w / b
        st[2] = b
        if j + 1 < m:
            H[j, j + 1] = H[j + 1, j] = b
    return 0, j1

