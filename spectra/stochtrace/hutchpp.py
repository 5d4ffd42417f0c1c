r"""Adaptive Hutch++: a deflating sketch grown while it pays, then residual probes.

:func:`_hutchpp_sketch` chooses the sketch size from the spectrum (one block of
``max(1, m // 25)`` vectors on a flat one, at most a third of the budget on a decaying
one) and :func:`_hutchpp` runs Hutchinson on the deflated operator; see the notes of
:mod:`spectra.stochtrace.estimators`.

References
----------
.. [1] R. A. Meyer, C. Musco, C. Musco and D. P. Woodruff, "Hutch++: optimal stochastic
   trace estimation", SOSA (2021).
.. [2] D. Persson, A. Cortinovis and D. Kressner, "Improved variants of the Hutch++
   algorithm for trace estimation", SIAM J. Matrix Anal. Appl. 43 (2022).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import coldots
from .core import _HUTCH_FIRST, _Ctx, _drive, _sem, extend_basis, project


def _hutchpp_block(m: int) -> int:
    """Sketch block of adaptive Hutch++: ``max(1, m // 25)`` test vectors."""
    return max(1, m // 25)


def _hutchpp_rmax(m: int) -> int:
    """Most sketch vectors :func:`_hutchpp_sketch` can keep (its stopping rule's bound)."""
    b = _hutchpp_block(m)
    return max(b, (m - max(2, -(-m // 3))) // 2)


def _hutchpp_sketch(ctx: _Ctx, m: int, rtol: float | None) -> tuple[Any, Any]:
    r"""Grow the Hutch++ sketch in blocks while deflation pays for itself.

    With ``r`` sketch vectors the residual probes cost ``m - 2r`` products and each has a
    variance proportional to :math:`\Phi(r) = \|B_r\|_F^2 - \operatorname{tr}(B_r)^2/d_r`,
    :math:`B_r = (I-P_r)A(I-P_r)`, :math:`d_r = n - r`. A new block ``Omega`` of ``b``
    vectors, independent of :math:`P_r`, estimates :math:`\|B_r\|_F^2` and
    :math:`\operatorname{tr}B_r` (normalised probes ``u = (I-P_r)omega``); after
    deflating it, :math:`\|B_{r+b}\|_F^2 = \|B_r\|_F^2 - 2\|AQ_e\|_F^2 +
    (\|Q^TAQ\|_F^2 - \|Q_r^TAQ_r\|_F^2)` and :math:`\operatorname{tr}B_{r+b} =
    \operatorname{tr}B_r - \operatorname{tr}(Q_e^TAQ_e)` exactly. The sketch stops at
    the first block that did not lower :math:`\Phi(r)/(m - 2r)` (diminishing returns), or
    at the split of the original Hutch++ (a third of the budget left for probes, so that
    their sample deviation is a usable standard error). The residual probes are drawn afterwards, so
    the split never depends on them and the estimate stays unbiased.
    """
    from ..probes import _empty

    n, op = ctx.n, ctx.op
    b = _hutchpp_block(m)
    rmax = _hutchpp_rmax(m)
    q = _empty(op.backend, rmax, n, op.dtype, op.device)  # rows: basis vectors
    z = _empty(op.backend, rmax, n, op.dtype, op.device)  # rows: A times them
    r, hsq = 0, 0.0
    H = np.zeros((0, 0))
    while True:
        Om = ctx.draw(b)
        Y = ctx.apply(Om)
        Q0, Z0 = q[:r], z[:r]
        if r == 0:
            BOm, U = Y, Om
        else:
            QtOm = Q0 @ Om
            U = Om - (QtOm.T @ Q0).T
            BOm = Y - (QtOm.T @ Z0).T
            BOm -= ((Q0 @ BOm).T @ Q0).T
        u2 = coldots(U, U)
        d = n - r
        fro = d * float(np.mean(coldots(BOm, BOm) / u2))
        tr_b = d * float(np.mean(coldots(U, BOm) / u2))
        del U, BOm
        phi_old = max(fro - tr_b * tr_b / d, 0.0)
        Qe = extend_basis(ctx, Q0, Y, Om)[0]
        del Y, Om
        c = Qe.shape[1]
        q[r : r + c] = Qe.T
        Ze = ctx.apply(q[r : r + c].T)
        z[r : r + c] = Ze.T
        Hn = project(ctx, q[: r + c], Ze)  # columns r: of H = Q^T A Q
        H = np.block([[H, Hn[:r]], [Hn[:r].T, 0.5 * (Hn[r:] + Hn[r:].T)]])
        h_new = float(np.sum(H * H))
        he = H[r:, r:]
        fro_new = fro - 2.0 * float(np.sum(coldots(Ze, Ze))) + (h_new - hsq)
        del Ze
        tr_new = tr_b - float(np.trace(he))
        r_old, r, hsq = r, r + c, h_new
        d_new = n - r
        phi_new = max(fro_new - tr_new * tr_new / max(d_new, 1), 0.0)
        if 2 * (r + b) > m - max(2, -(-m // 3)) or d_new <= b:
            break  # keep a third of the budget for probes: their std must be trustworthy
        if phi_new * (m - 2 * r_old) >= phi_old * (m - 2 * r):
            break  # the last block did not pay for itself: the next one will not either
        if rtol is not None:  # an early target: stop once a first round of probes would do
            value = float(np.trace(H)) + tr_new
            if np.sqrt(2.0 * phi_new / _HUTCH_FIRST) <= rtol * abs(value):
                break
    return q[:r].T, H


def _hutchpp(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    """Adaptive Hutch++: the sketch of :func:`_hutchpp_sketch`, then residual probes.

    The residual samples ``g^T (I-QQ^T) A (I-QQ^T) g`` (scaled by ``(n - r) / ||(I-QQ^T)
    g||^2`` for rotation-invariant probes) are formed block by block from ``G``, ``A G``,
    ``Q`` and ``H = Q^T A Q`` and kept as numbers, so more probes under ``rtol`` reuse
    every product. Memory (``n``-vectors in the operator's dtype): while sketching,
    ``Q`` and ``AQ`` preallocated for ``r_max = max(b_s, (m - max(2, ceil(m/3))) // 2)``
    vectors each plus about four sketch blocks of ``b_s = max(1, m // 25)``; then ``Q``
    and one block of residual probes with their products, ``r_max + 2 min(block, m -
    2 b_s)``; the peak is the larger.
    """
    Q, H = _hutchpp_sketch(ctx, m, rtol)
    r = Q.shape[1]
    Qr = Q.T  # rows
    st: dict[str, Any] = {"resid": [], "buf": None}
    gmax = m - 2 * r
    trH = float(np.trace(H))

    def round_fn(g: int) -> tuple:
        have = sum(x.size for x in st["resid"])
        for j0 in range(have, g, ctx.block):
            if st["buf"] is None:  # one probe buffer for every block: no fresh pages
                st["buf"] = ctx.new_block(min(ctx.block, gmax))
            G = ctx.draw_into(st["buf"][: min(ctx.block, g - j0)])
            AG = ctx.apply(G)
            QtG, QtAG = project(ctx, Qr, G), project(ctx, Qr, AG)
            d = coldots(G, AG)
            resid = d - 2.0 * np.sum(QtG * QtAG, axis=0) + np.sum(QtG * (H @ QtG), axis=0)
            if ctx.improved:
                u2 = np.maximum(coldots(G, G) - np.sum(QtG * QtG, axis=0),
                                np.finfo(np.float64).tiny)
                resid = resid * (ctx.n - r) / u2
            st["resid"].append(resid)
            del G, AG
        resid = np.concatenate(st["resid"])
        samples = trH + resid
        return float(np.mean(samples)), _sem(resid), samples

    def grow(g: int, out: tuple) -> int:
        err, scale = out[1], abs(out[0])
        need = g * (err / max(rtol * scale, 1e-300)) ** 2 if np.isfinite(err) else 2 * g
        return int(max(g + max(1, g // 4), min(2 * g, np.ceil(1.2 * need))))

    return _drive(round_fn, _HUTCH_FIRST, gmax, rtol, grow)
