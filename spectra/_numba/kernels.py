r"""Numba cores of the kernel-matrix products (:mod:`spectra.operators.kernels`).

A vectorisable exponential (:func:`exp_inplace64`, :func:`exp_inplace32`), the
kernel-value pass over rows of inner products (:func:`kernel_rows_eval`) and the fused,
threaded product pass :math:`K V` (:func:`kernel_matmat_part`). Kernel codes: 0 rbf,
1 laplace, 2 Matérn 3/2, 3 Matérn 5/2, 4 polynomial. Every core is compiled once and
cached on disk (``cache=True``) and has a plain NumPy twin in
``tests/spectra/test_kernels.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ..backend import prefer_threadsafe_layer

prefer_threadsafe_layer()

__all__ = ["exp_inplace32", "exp_inplace64", "kernel_matmat_part", "kernel_rows_eval"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93145751953125e-1  # ln 2 = _LN2_HI + _LN2_LO; k * _LN2_HI is exact (20 bits)
_LN2_LO = 1.42860682030941723212e-6
_EXP_MIN64 = -708.0  # below: exp(x) < 3.3e-308, returned as 0 (2^k must stay normal)
_EXP_MIN32 = np.float32(-87.0)  # below: exp(x) < 1.7e-38, returned as 0
_E64 = tuple(1.0 / math.factorial(j) for j in range(13))  # Taylor coefficients of e^r
_E32 = tuple(np.float32(1.0 / math.factorial(j)) for j in range(8))
_LOG2E32, _LN2_HI32 = np.float32(_LOG2E), np.float32(0.693359375)  # 0.693359375 = 355/512
_LN2_LO32 = np.float32(-2.12194440e-4)
_HALF32, _ZERO32 = np.float32(0.5), np.float32(0.0)
_FAST = {"contract", "reassoc", "nsz"}  # FMA and vectorised reductions; NaN/Inf kept IEEE
_FMA = {"contract"}  # no reassociation: it would fold the two halves of Cody-Waite


@njit(cache=True, fastmath=_FMA)
def exp_inplace64(x, kb):  # pragma: no cover - compiled
    r"""In place :math:`x_j \leftarrow e^{x_j}` in float64, written so that LLVM vectorises it.

    Cody-Waite range reduction :math:`x = k \ln 2 + r`, :math:`|r| \le \ln 2 / 2`
    (:math:`\ln 2` split in two so that ``k ln2_hi`` is exact), the degree-12 Taylor
    polynomial of :math:`e^r` by Estrin's scheme (truncation
    :math:`(\ln 2/2)^{13}/13! < 2\cdot 10^{-16}`), and :math:`2^k` added to the result's
    exponent field through an integer view (a second, integer loop). Arguments below
    ``-708`` give 0 (the true value is below ``3.3e-308``); valid up to ``709``. Measured
    relative error below ``5e-16`` over ``[-708, 0]``. ``kb`` is scratch of the same length.
    Pip Numba has no SVML, so ``math.exp`` in a loop is a scalar libm call.
    """
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12 = _E64
    n = x.shape[0]
    for j in range(n):
        t = x[j]
        low = t < _EXP_MIN64
        t = max(t, _EXP_MIN64)
        kf = np.floor(t * _LOG2E + 0.5)
        r = (t - kf * _LN2_HI) - kf * _LN2_LO
        r2 = r * r
        r4 = r2 * r2
        q0 = (c0 + c1 * r) + (c2 + c3 * r) * r2
        q1 = (c4 + c5 * r) + (c6 + c7 * r) * r2
        q2 = (c8 + c9 * r) + (c10 + c11 * r) * r2
        p = (q0 + q1 * r4) + (q2 + c12 * r4) * (r4 * r4)
        x[j] = 0.0 if low else p
        kb[j] = 0.0 if low else kf
    xi = x.view(np.int64)
    for j in range(n):
        xi[j] += np.int64(kb[j]) << 52


@njit(cache=True, fastmath=_FMA)
def exp_inplace32(x, kb):  # pragma: no cover - compiled
    r"""In place :math:`x_j \leftarrow e^{x_j}` in float32 (twin of :func:`exp_inplace64`).

    Degree-7 Taylor polynomial (truncation :math:`(\ln 2/2)^8/8! < 6\cdot 10^{-9}`),
    arguments below ``-87`` give 0; measured relative error below ``2e-7``.
    """
    c0, c1, c2, c3, c4, c5, c6, c7 = _E32
    n = x.shape[0]
    for j in range(n):
        t = x[j]
        low = t < _EXP_MIN32
        t = max(t, _EXP_MIN32)
        kf = np.floor(t * _LOG2E32 + _HALF32)
        r = (t - kf * _LN2_HI32) - kf * _LN2_LO32
        r2 = r * r
        p = ((c0 + c1 * r) + (c2 + c3 * r) * r2) + ((c4 + c5 * r) + (c6 + c7 * r) * r2) * (r2 * r2)
        x[j] = _ZERO32 if low else p
        kb[j] = _ZERO32 if low else kf
    xi = x.view(np.int32)
    for j in range(n):
        xi[j] += np.int32(kb[j]) << 23


def _exp_inplace(x, kb):  # pragma: no cover - typed by the overload below
    raise NotImplementedError("only callable from compiled code")


@overload(_exp_inplace, jit_options={"fastmath": _FMA})
def _exp_inplace_typed(x, kb):  # pragma: no cover - compiled
    if x.dtype == types.float32:
        return lambda x, kb: exp_inplace32(x, kb)
    return lambda x, kb: exp_inplace64(x, kb)


@njit(cache=True, fastmath=_FAST, inline="always")
def _kernel_row(row, kb, pb, si, sq_c, xi, Xc, kind, prm, degree, jd):  # pragma: no cover
    """Turn one row of inner products ``x_i . x_j`` into kernel values, in place.

    ``prm = (a, b, 1, 0, 1/3, thr)`` in the row's dtype (typed constants keep float32
    arithmetic in float32): ``a`` the inverse length scale of the kernel, ``b`` the
    polynomial offset, ``thr`` the relative threshold below which a squared distance
    from the expansion is recomputed from coordinates (sqrt kernels only). ``jd`` is
    the column of the diagonal entry ``x_i`` itself (``-1`` if none): its distance is
    set exactly to 0.
    """
    a, b, one, zero, third, thr = prm[0], prm[1], prm[2], prm[3], prm[4], prm[5]
    c = row.shape[0]
    if kind == 4:  # polynomial (a <x, y> + b)^degree
        for j in range(c):
            pb[j] = a * row[j] + b
            row[j] = pb[j]
        for _ in range(degree - 1):
            for j in range(c):
                row[j] *= pb[j]
        return
    if 0 <= jd < c:
        row[jd] = si  # |x_i|^2 + |x_i|^2 - 2 x_i.x_i = 0 exactly
    if kind == 0:  # rbf: exp(-a |x - y|^2), a = 1 / (2 h^2)
        for j in range(c):
            row[j] = min((row[j] + row[j]) - si - sq_c[j], zero) * a
        _exp_inplace(row, kb)
        return
    for j in range(c):
        row[j] = max(si + sq_c[j] - (row[j] + row[j]), zero)
    for j in range(c):  # cancellation in the expansion: recompute near-duplicate pairs
        if row[j] < thr * (si + sq_c[j]) and j != jd:
            s = zero
            for t in range(xi.shape[0]):
                dt = xi[t] - Xc[j, t]
                s += dt * dt
            row[j] = s
    for j in range(c):
        r = math.sqrt(row[j]) * a
        row[j] = -r
        if kind == 2:  # matern 3/2: (1 + r) e^-r, r = sqrt(3) |x - y| / h
            pb[j] = one + r
        elif kind == 3:  # matern 5/2: (1 + r + r^2 / 3) e^-r, r = sqrt(5) |x - y| / h
            pb[j] = one + r + r * r * third
    _exp_inplace(row, kb)
    if kind >= 2:
        for j in range(c):
            row[j] *= pb[j]


@njit(cache=True, nogil=True, fastmath=_FAST)
def kernel_rows_eval(G, sq_r, sq_c, Xr, Xc, kind, prm, degree, i0, i1):  # pragma: no cover
    """Turn rows ``i0:i1`` of inner products ``G = X_r X_c^T`` into kernel values, in place.

    Same arithmetic as :func:`kernel_matmat_part` (no diagonal entries are assumed:
    the caller sets ``G[i, j] = |x_i|^2`` where row ``i`` and column ``j`` are the
    same point, which makes their distance exactly 0). Releases the GIL, so that
    threads can share the rows.
    """
    c = G.shape[1]
    kb = np.empty(c, G.dtype)
    pb = np.empty(c, G.dtype)
    for i in range(i0, i1):
        _kernel_row(G[i], kb, pb, sq_r[i], sq_c, Xr[i], Xc, kind, prm, degree, -1)


@njit(cache=True, fastmath=_FAST, inline="always")
def _gram4(P, i, c0, c1, G, zero):  # pragma: no cover - compiled
    """``G[0:4, :c1-c0] = P[i:i+4] P[c0:c1]^T`` by 4 x 4 register blocks of dot products."""
    d = P.shape[1]
    x0, x1, x2, x3 = P[i], P[i + 1], P[i + 2], P[i + 3]
    j = c0
    while j + 4 <= c1:
        y0, y1, y2, y3 = P[j], P[j + 1], P[j + 2], P[j + 3]
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
        s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
        for t in range(d):
            a0, a1, a2, a3 = x0[t], x1[t], x2[t], x3[t]
            b0, b1, b2, b3 = y0[t], y1[t], y2[t], y3[t]
            s00 += a0 * b0
            s01 += a0 * b1
            s02 += a0 * b2
            s03 += a0 * b3
            s10 += a1 * b0
            s11 += a1 * b1
            s12 += a1 * b2
            s13 += a1 * b3
            s20 += a2 * b0
            s21 += a2 * b1
            s22 += a2 * b2
            s23 += a2 * b3
            s30 += a3 * b0
            s31 += a3 * b1
            s32 += a3 * b2
            s33 += a3 * b3
        jj = j - c0
        G[0, jj], G[0, jj + 1], G[0, jj + 2], G[0, jj + 3] = s00, s01, s02, s03
        G[1, jj], G[1, jj + 1], G[1, jj + 2], G[1, jj + 3] = s10, s11, s12, s13
        G[2, jj], G[2, jj + 1], G[2, jj + 2], G[2, jj + 3] = s20, s21, s22, s23
        G[3, jj], G[3, jj + 1], G[3, jj + 2], G[3, jj + 3] = s30, s31, s32, s33
        j += 4
    while j < c1:
        y0 = P[j]
        s0 = s1 = s2 = s3 = zero
        for t in range(d):
            b0 = y0[t]
            s0 += x0[t] * b0
            s1 += x1[t] * b0
            s2 += x2[t] * b0
            s3 += x3[t] * b0
        jj = j - c0
        G[0, jj], G[1, jj], G[2, jj], G[3, jj] = s0, s1, s2, s3
        j += 1


@njit(cache=True, fastmath=_FAST, inline="always")
def _gram1(P, i, c0, c1, g, zero):  # pragma: no cover - compiled
    """``g[:c1-c0] = P[c0:c1] P[i]`` (the rows left over by :func:`_gram4`)."""
    x = P[i]
    for j in range(c0, c1):
        y = P[j]
        s = zero
        for t in range(P.shape[1]):
            s += x[t] * y[t]
        g[j - c0] = s


@njit(cache=True, nogil=True, fastmath=_FAST)
def kernel_matmat_part(P, sq, Vt, A, t, nt, kind, prm, degree, rows, chunk):  # pragma: no cover
    r"""Thread ``t``'s share of :math:`K V` for a symmetric kernel matrix (releases the GIL).

    The rows are cut into tasks of ``rows`` rows; thread ``t`` of ``nt`` takes tasks
    ``t, t + nt, ...`` (dealt cyclically, which balances the triangular work). A task
    computes, ``chunk`` columns at a time, the inner products of 4 of its rows with the
    columns (4 x 4 register blocks of dot products, the chunk of points staying in
    L2), turns them into kernel values in L1 (``_kernel_row``) and accumulates: on its
    own diagonal square only the rows' sums :math:`\sum_j K_{ij} v_j`; right of it
    both those and the columns' sums :math:`K_{ij} v_i` (by symmetry each
    off-diagonal entry is evaluated once).

    Parameters
    ----------
    P : array, shape ``(N, d)``
        Points (centred for distance kernels), C-contiguous.
    sq : array, shape ``(N,)``
        Squared norms of the rows of ``P``.
    Vt : array, shape ``(k, N)``
        The vectors, transposed.
    A : array, shape ``(k, N)``
        Output, overwritten: this thread's partial sum; :math:`K V = \sum_t A_t^T`.
    t, nt : int
        This thread and the number of threads.
    kind, prm, degree
        Kernel code, typed parameters and polynomial degree (see ``_kernel_row``).
    rows, chunk : int
        Rows per task and columns per chunk.
    """
    N = P.shape[0]
    zero = prm[3]
    A[:] = zero
    width = max(chunk, rows)
    G = np.empty((4, width), P.dtype)
    kb = np.empty(width, P.dtype)
    pb = np.empty(width, P.dtype)
    for task in range(t, (N + rows - 1) // rows, nt):
        r0 = task * rows
        r1 = min(N, r0 + rows)
        c0 = r0
        while c0 < N:
            c1 = r1 if c0 == r0 else min(N, c0 + chunk)
            _task_chunk(P, sq, Vt, A, G, kb, pb, r0, r1, c0, c1, kind, prm, degree)
            c0 = c1


@njit(cache=True, fastmath=_FAST, inline="always")
def _task_chunk(P, sq, Vt, A, G, kb, pb, r0, r1, c0, c1, kind, prm, degree):  # pragma: no cover
    """Rows ``r0:r1`` against columns ``c0:c1`` (see :func:`kernel_matmat_part`)."""
    zero = prm[3]
    w = c1 - c0
    sym = c0 >= r1
    for i in range(r0, r1, 4):
        m = min(4, r1 - i)
        if m == 4:
            _gram4(P, i, c0, c1, G, zero)
        else:
            for ii in range(m):
                _gram1(P, i + ii, c0, c1, G[ii], zero)
        for ii in range(m):
            _kernel_row(G[ii, :w], kb, pb, sq[i + ii], sq[c0:c1], P[i + ii], P[c0:c1], kind,
                        prm, degree, i + ii - c0)
        if m == 4:
            _accumulate4(G, Vt, A, i, c0, c1, sym, zero)
        else:
            for ii in range(m):
                _accumulate1(G[ii], Vt, A, i + ii, c0, c1, sym, zero)


@njit(cache=True, fastmath=_FAST, inline="always")
def _accumulate4(G, Vt, A, i, c0, c1, sym, zero):  # pragma: no cover - compiled
    """Rows ``i:i+4`` of the kernel block in ``G``: row sums, and column sums if ``sym``.

    Four rows at a time share every load of ``V`` and every update of the column sums.
    """
    w = c1 - c0
    g0, g1, g2, g3 = G[0], G[1], G[2], G[3]
    for q in range(Vt.shape[0]):
        vq = Vt[q, c0:c1]
        s0 = s1 = s2 = s3 = zero
        for j in range(w):
            v = vq[j]
            s0 += g0[j] * v
            s1 += g1[j] * v
            s2 += g2[j] * v
            s3 += g3[j] * v
        A[q, i] += s0
        A[q, i + 1] += s1
        A[q, i + 2] += s2
        A[q, i + 3] += s3
        if sym:
            a0, a1, a2, a3 = Vt[q, i], Vt[q, i + 1], Vt[q, i + 2], Vt[q, i + 3]
            aq = A[q, c0:c1]
            for j in range(w):
                aq[j] += (a0 * g0[j] + a1 * g1[j]) + (a2 * g2[j] + a3 * g3[j])


@njit(cache=True, fastmath=_FAST, inline="always")
def _accumulate1(g, Vt, A, i, c0, c1, sym, zero):  # pragma: no cover - compiled
    """One row of the kernel block (the rows left over by :func:`_accumulate4`)."""
    w = c1 - c0
    for q in range(Vt.shape[0]):
        vq = Vt[q, c0:c1]
        s = zero
        for j in range(w):
            s += g[j] * vq[j]
        A[q, i] += s
        if sym:
            a = Vt[q, i]
            aq = A[q, c0:c1]
            for j in range(w):
                aq[j] += a * g[j]
