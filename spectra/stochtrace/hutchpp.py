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

from .core import _HUTCH_FIRST, _cat, _Ctx, _drive, _extend_basis, _sem


def _hutchpp_block(m: int) -> int:
    """Sketch block of adaptive Hutch++: ``max(1, m // 25)`` test vectors."""
    return max(1, m // 25)


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
    xp, n = ctx.xp, ctx.n
    b = _hutchpp_block(m)
    Q = Z = None
    r, hsq = 0, 0.0
    f64 = xp.float64
    while True:
        Om = ctx.draw(b)
        Y = ctx.apply(Om)
        if Q is None:
            BOm = Y
            U = Om
        else:
            QtOm = Q.T @ Om
            U = Om - Q @ QtOm
            BOm = Y - Z @ QtOm
            BOm = BOm - Q @ (Q.T @ BOm)
        u2 = ctx.host(xp.sum(xp.astype(U * U, f64), axis=0))
        d = n - r
        fro = d * float(np.mean(ctx.host(xp.sum(xp.astype(BOm * BOm, f64), axis=0)) / u2))
        tr_b = d * float(np.mean(ctx.host(xp.sum(xp.astype(U * BOm, f64), axis=0)) / u2))
        phi_old = max(fro - tr_b * tr_b / d, 0.0)
        Qe = _extend_basis(xp, Q, Y)
        Ze = ctx.apply(Qe)
        Q, Z = _cat(xp, Q, Qe), _cat(xp, Z, Ze)
        H = ctx.host(Q.T @ Z)
        h_new = float(np.sum(H * H))
        he = H[r:, r:]
        fro_new = fro - 2.0 * float(ctx.host(xp.sum(xp.astype(Ze * Ze, f64)))) + (h_new - hsq)
        tr_new = tr_b - float(np.trace(he))
        r_old, r, hsq = r, Q.shape[1], h_new
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
    return Q, Z


def _hutchpp(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    """Adaptive Hutch++: the sketch of :func:`_hutchpp_sketch`, then residual probes.

    The residual samples ``g^T (I-QQ^T) A (I-QQ^T) g`` (scaled by ``(n - r) / ||(I-QQ^T)
    g||^2`` for rotation-invariant probes) are formed from stored ``G``, ``A G``, ``Q``
    and ``A Q`` so that every product is reused when ``rtol`` adds probes.
    """
    xp = ctx.xp
    Q, Z = _hutchpp_sketch(ctx, m, rtol)
    r = Q.shape[1]
    H = ctx.host(Q.T @ Z)
    H = 0.5 * (H + H.T)
    st: dict[str, Any] = {"G": None, "AG": None}
    gmax = m - 2 * r

    def round_fn(g: int) -> tuple:
        have = 0 if st["G"] is None else st["G"].shape[1]
        if g > have:
            G = ctx.draw(g - have)
            st["G"], st["AG"] = _cat(xp, st["G"], G), _cat(xp, st["AG"], ctx.apply(G))
        G, AG = st["G"], st["AG"]
        QtG, QtAG = ctx.host(Q.T @ G), ctx.host(Q.T @ AG)
        f64 = xp.float64
        d = ctx.host(xp.sum(xp.astype(G * AG, f64), axis=0))
        resid = d - 2.0 * np.sum(QtG * QtAG, axis=0) + np.sum(QtG * (H @ QtG), axis=0)
        if ctx.improved:
            g2 = ctx.host(xp.sum(xp.astype(G * G, f64), axis=0))
            u2 = np.maximum(g2 - np.sum(QtG * QtG, axis=0), np.finfo(np.float64).tiny)
            resid = resid * (ctx.n - r) / u2
        samples = np.trace(H) + resid
        return float(np.mean(samples)), _sem(resid), samples

    def grow(g: int, out: tuple) -> int:
        err, scale = out[1], abs(out[0])
        need = g * (err / max(rtol * scale, 1e-300)) ** 2 if np.isfinite(err) else 2 * g
        return int(max(g + max(1, g // 4), min(2 * g, np.ceil(1.2 * need))))

    return _drive(round_fn, _HUTCH_FIRST, gmax, rtol, grow)
