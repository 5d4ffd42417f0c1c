r"""Exchangeable leave-one-out estimators: XTrace, XNysTrace and XDiag.

On the sketch :class:`~spectra.stochtrace.sketch._Sketch` (``A Omega = QR``, ``H``,
``W`` and, for XDiag, ``AQ``): the leave-one-out directions
:math:`s_i`, the ``k`` leave-one-out estimates of each method and their delete-one
jackknife standard errors (from leave-two-out estimates), and the adaptive drivers
:func:`_xtrace`, :func:`_xdiag` and :func:`_xnystrace` used by :func:`spectra.trace` and
:func:`spectra.diagonal`. The formulas are in the notes of :mod:`spectra.stochtrace.estimators`.

References
----------
.. [1] E. N. Epperly, J. A. Tropp and R. J. Webber, "XTrace: making the most of every
   sample in stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45 (2024).
.. [2] B. Efron and C. Stein, "The jackknife estimate of variance", Ann. Stat. 9 (1981).
.. [3] J. A. Tropp, A. Yurtsever, M. Udell and V. Cevher, "Fixed-rank approximation of a
   positive-semidefinite matrix from streaming data", NeurIPS (2017).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

from ..backend import eps
from .core import _START, _Ctx, _drive
from .sketch import _Sketch


def _jackknife(reps: np.ndarray, axis: int = -1) -> Any:
    r"""Delete-one jackknife standard error from the replicates :math:`\hat t_{(-j)}`.

    :math:`\sqrt{\frac{k-1}{k}\sum_j(\hat t_{(-j)} - \bar t_{(\cdot)})^2}` (Efron and
    Stein: conservative in expectation for a symmetric function of i.i.d. test vectors).
    """
    k = reps.shape[axis]
    dev = reps - np.mean(reps, axis=axis, keepdims=True)
    return np.sqrt((k - 1) / k * np.sum(dev * dev, axis=axis))


def _shifted(Y: Any, Om: Any, nu: float) -> Any:
    """``Y + nu Omega`` in one new array."""
    out = Om * nu
    out += Y
    return out


def _r_factor(ctx: _Ctx, rows: Any) -> np.ndarray:
    """The ``R`` factor (float64, host) of the ``n x k`` matrix ``rows.T``, in place."""
    if ctx.xp.__name__.endswith("numpy"):  # ?geqrf on the buffer: no n x k copy
        a = rows.T
        geqrf = sla.get_lapack_funcs("geqrf", (a,))
        qr, _, _, info = geqrf(a, lwork=max(1, 64 * a.shape[1]), overwrite_a=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"geqrf failed (info = {info})")
        return np.triu(qr[: a.shape[1]]).astype(np.float64)
    return ctx.host(ctx.xp.linalg.qr(rows.T, mode="r")[1])


def _loo_directions(R: np.ndarray, dtype: Any) -> np.ndarray:
    r"""Unit vectors ``s_i`` spanning ``range(R) \ominus range(R_{-i})``, as columns.

    ``s_i = R^{-T} e_i / \|R^{-T} e_i\|``, computed through the SVD of ``R`` with the
    singular values floored at ``max(k, 10) eps sigma_max``: when ``A Omega`` is
    (numerically) rank deficient the removed direction then lies in the part of the
    basis that ``A Omega`` does not reach, and nothing overflows to NaN.
    """
    k = R.shape[1]
    U, sig, Vt = np.linalg.svd(R)
    if sig[0] == 0.0:
        sig = np.ones_like(sig)
    sig = np.maximum(sig, max(k, 10) * eps(dtype) * sig[0])
    S = U @ (Vt / sig[:, None])
    return S / np.linalg.norm(S, axis=0)


def _pair_den(rho: np.ndarray) -> np.ndarray:
    """``1 - rho_ij^2`` (Gram determinant of ``s_i, s_j``), floored; 1 on the diagonal."""
    den = np.maximum(1.0 - rho * rho, 1e3 * np.finfo(np.float64).eps)
    np.fill_diagonal(den, 1.0)
    return den


def _xtrace_estimates(p: dict, n: int, improved: bool, dtype: Any) -> tuple[np.ndarray, float]:
    r"""The ``k`` leave-one-out XTrace estimates and the jackknife standard error.

    In the basis ``Q`` the removed direction of estimate ``i`` is ``s_i``; the jackknife
    replicate ``j`` (XTrace on :math:`\Omega_{-j}`) averages the leave-two-out estimates
    :math:`\hat t_{i,-j}`, whose removed plane is ``span(s_i, s_j)``: with
    :math:`\rho = s_i^Ts_j`, :math:`\gamma = M^{-1}[s_i^Tw_i, s_j^Tw_i]^T`,
    :math:`M = [[1, \rho], [\rho, 1]]` and :math:`c = w_i - \gamma_1s_i - \gamma_2s_j`
    everything is a ``k x k`` array operation.
    """
    H, W, T, R, d, o2 = p["H"], p["W"], p["T"], p["R"], p["d"], p["o2"]
    k = W.shape[1]
    S = _loo_directions(R, dtype)
    trH = np.trace(H)
    HW, HS = H @ W, H @ S
    sw = np.sum(S * W, axis=0)
    C = W - S * sw  # (I - s_i s_i^T) w_i
    resid = (d - np.sum(T * C, axis=0) - np.sum(C * R, axis=0) + np.sum(C * (H @ C), axis=0))
    tiny = np.finfo(np.float64).tiny
    if improved:  # u_i = (I - P_i) omega_i, ||u_i||^2 = ||omega_i||^2 - ||c_i||^2
        resid = resid * (n - k + 1) / np.maximum(o2 - np.sum(C * C, axis=0), tiny)
    samples = trH - np.sum(S * HS, axis=0) + resid
    if k < 2:
        return samples, float("inf")
    # leave-two-out: arrays indexed [i (probe), j (also removed)]
    rho = S.T @ S
    den = _pair_den(rho)
    SW, SHS, SHW, ST, SR = S.T @ W, S.T @ HS, S.T @ HW, S.T @ T, S.T @ R
    b1, b2 = sw[:, None], SW.T
    g1, g2 = (b1 - rho * b2) / den, (b2 - rho * b1) / den
    hii, hjj = np.diag(SHS)[:, None], np.diag(SHS)[None, :]
    tr_pi = (hii + hjj - 2.0 * rho * SHS) / den
    chc = (np.sum(W * HW, axis=0)[:, None] - 2.0 * (g1 * np.diag(SHW)[:, None] + g2 * SHW.T)
           + g1 * g1 * hii + 2.0 * g1 * g2 * SHS + g2 * g2 * hjj)
    tc = np.sum(T * W, axis=0)[:, None] - g1 * np.diag(ST)[:, None] - g2 * ST.T
    cr = np.sum(W * R, axis=0)[:, None] - g1 * np.diag(SR)[:, None] - g2 * SR.T
    res2 = d[:, None] - tc - cr + chc
    if improved:
        cc = np.sum(W * W, axis=0)[:, None] - (g1 * b1 + g2 * b2)
        res2 = res2 * (n - k + 2) / np.maximum(o2[:, None] - cc, tiny)
    t2 = trH - tr_pi + res2
    np.fill_diagonal(t2, 0.0)
    return samples, float(_jackknife(np.sum(t2, axis=0) / (k - 1)))


def _xdiag_moments(sk: _Sketch) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and jackknife standard error (per entry) of the XDiag estimate.

    Replicate ``j`` (XDiag on :math:`\Omega_{-j}`) sums the leave-two-out estimates
    over ``i != j``; with ``X = QS``, ``V = ZS`` and the pair coefficients of
    :func:`_xtrace_estimates` the sums are ``n x k x k`` products. Every entry depends
    on its own row of ``Q``, ``Z`` and ``Omega`` only, so the rows are processed in
    slices of about ``2^16 / k`` (about 5 MiB of workspace; two float64 ``n``-vectors of
    output).
    """
    ctx = sk.ctx
    R = sk.small()["R"]
    S = _loo_directions(R, ctx.op.dtype)
    k = S.shape[1]
    SR = S.T @ R
    alpha = np.diag(SR).copy()  # s_i^T r_i
    coef = {"S": S, "alpha": alpha}
    if k >= 2:
        rho = S.T @ S
        Cc = 1.0 / _pair_den(rho)
        np.fill_diagonal(Cc, 0.0)
        Ec, beta = rho * Cc, SR.T  # beta[i, j] = s_j^T r_i
        coef.update(Cc=Cc, Ec=Ec, csum=np.sum(Cc, axis=0),
                    C1=Cc * alpha[:, None] - Ec * beta, C2=Cc * beta - Ec * alpha[:, None])
    coef = {key: ctx.dev(val) for key, val in coef.items()}
    mean, se = np.empty(ctx.n), np.full(ctx.n, np.inf)
    rows = max(64, 2**16 // max(k, 1))
    Q, Z, Om = sk.Q, sk.Z, sk.Om
    for a in range(0, ctx.n, rows):
        sl = slice(a, min(ctx.n, a + rows))
        m_, s_ = _xdiag_rows(ctx.xp, Q[sl], Z[sl], Om[sl], coef, k)
        mean[sl] = ctx.host(m_)
        if s_ is not None:
            se[sl] = ctx.host(s_)
    return mean, se


def _xdiag_rows(xp: Any, Q: Any, Z: Any, Om: Any, c: dict, k: int) -> tuple[Any, Any]:
    """:func:`_xdiag_moments` on a slice of rows (float64 results in the operator's xp)."""
    f64 = xp.float64
    X, V = Q @ c["S"], Z @ c["S"]
    D = xp.sum(xp.astype(Q * Z, f64), axis=1)
    OX = Om * X
    E = xp.astype(OX * c["alpha"][None, :] - X * V, f64) + D[:, None]
    mean = xp.mean(E, axis=1)
    if k < 2:
        return mean, None
    XV = X * V
    tot = (XV @ (-c["Cc"]) - XV * c["csum"][None, :] + V * (X @ c["Ec"])
           + X * (V @ c["Ec"]) + OX @ c["C1"] + X * (Om @ c["C2"]))
    reps = xp.astype(tot, f64) / (k - 1) + D[:, None]
    dev = reps - xp.mean(reps, axis=1)[:, None]
    return mean, xp.sqrt((k - 1) / k * xp.sum(dev * dev, axis=1))


def _xnystrace_estimates(ctx: _Ctx, grams: tuple, k: int,
                         r_factor: Any) -> tuple[np.ndarray, float]:
    """The ``k`` leave-one-out XNysTrace estimates of a PSD operator and their jackknife.

    Works on the float64 Gram matrices ``grams = (Omega^T Y, Y^T Y, Omega^T Omega)`` of
    the test vectors and their products, and on the triangular factor ``R`` of
    ``Y_nu = QR`` from ``r_factor(nu)`` (``Q`` is never formed).
    The shift ``nu = sqrt(n) eps ||Y||_2`` (Tropp et al. 2017) makes the Cholesky factor
    safe in floating point; its contribution ``nu n`` is subtracted exactly.
    With ``Y_nu = Y + nu Omega``, ``Omega^T Y_nu = C^T C`` (Cholesky),
    ``G^{-1} = (C^T C)^{-1}``, ``K = C^{-T} Y_nu^T Y_nu C^{-1}`` (``= B^T B`` for
    ``Y_nu = QR``, ``B = R C^{-1}``) and ``N = G^{-1} Y_nu^T Y_nu G^{-1}``:
    ``tr(A_(i)) = tr K - N_ii / G^{-1}_ii`` and the residual is the Schur complement
    ``omega_i^T (A_nu - A_(i)) omega_i = 1 / G^{-1}_ii``; the improved estimate scales it
    by ``(n - k + 1) / ||u_i||^2`` with ``||u_i||^2 = 1 / [(Omega^T Omega)^{-1}]_ii``.
    Leave-two-out quantities follow from the same ``k x k`` inverses by one rank-one
    downdate.
    """
    n = ctx.n
    OY, YY, OO = grams
    ynorm = float(np.sqrt(max(np.linalg.eigvalsh(0.5 * (YY + YY.T))[-1], 0.0)))  # ||Y||_2
    if ynorm == 0.0:
        return np.zeros(k), 0.0
    nu = float(np.sqrt(n) * eps(ctx.op.dtype) * ynorm)
    for _ in range(4):  # a few larger shifts for rounding; never enough to hide an indefinite A
        G = OY + nu * OO
        try:
            C = sla.cholesky(0.5 * (G + G.T), lower=False)
            break
        except np.linalg.LinAlgError:
            nu *= 100.0
    else:
        raise ValueError(
            "xnystrace: Omega^T A Omega is not positive definite even after a shift; "
            "is the operator really positive semi-definite? Use method='xtrace' otherwise"
        )
    R = r_factor(nu)  # Y_nu = QR: accurate where Y_nu^T Y_nu would square the condition
    B = sla.solve_triangular(C, R.T, trans="T", lower=False).T
    U = sla.solve_triangular(C, np.eye(k), trans="T", lower=False)  # C^{-T}
    Gi = U.T @ U
    BU = B @ U
    N = BU.T @ BU
    g = np.diag(Gi).copy()
    trB = float(np.sum(B * B))
    scale1 = scale2 = 1.0
    if ctx.improved:
        Oi = _gram_inverse(OO)
        oi = np.diag(Oi)
        scale1 = (n - k + 1) * oi
        with np.errstate(divide="ignore", invalid="ignore"):
            o2 = oi[:, None] - Oi * Oi / oi[None, :]
        scale2 = (n - k + 2) * np.maximum(o2, np.finfo(np.float64).tiny)
    samples = trB - np.diag(N) / g + scale1 / g - nu * n
    if k < 2:
        return samples, float("inf")
    # leave-two-out, [i, j]: G^{-1} downdated by column j
    gj = g[None, :]
    g2 = np.maximum(g[:, None] - Gi * Gi / gj, 1e3 * np.finfo(np.float64).eps * g[:, None])
    nii = (np.diag(N)[:, None] - 2.0 * N * Gi / gj + Gi * Gi * np.diag(N)[None, :] / gj**2)
    t2 = trB - np.diag(N)[None, :] / gj - nii / g2 + scale2 / g2 - nu * n
    np.fill_diagonal(t2, 0.0)
    return samples, float(_jackknife(np.sum(t2, axis=0) / (k - 1)))


def _gram_inverse(G: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite Gram matrix (pseudo-inverse if singular)."""
    G = 0.5 * (G + G.T)
    try:
        c = sla.cho_factor(G)
        return sla.cho_solve(c, np.eye(G.shape[0]))
    except np.linalg.LinAlgError:
        return np.linalg.pinv(G, hermitian=True)


# ---------------------------------------------------------------------------- methods


def _xtrace(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    sk = _Sketch(ctx, m // 2, keep_z=False)

    def round_fn(k: int) -> tuple:
        sk.grow(k)
        s, se = _xtrace_estimates(sk.small(), ctx.n, ctx.improved, ctx.op.dtype)
        return float(np.mean(s)), se, s

    return _drive(round_fn, _START["xtrace"], m // 2, rtol)


def _xdiag(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    sk = _Sketch(ctx, m // 2, keep_z=True)

    def round_fn(k: int) -> tuple:
        sk.grow(k)
        return (*_xdiag_moments(sk), None)

    return _drive(round_fn, _START["xdiag"], m // 2, rtol)


def _xnystrace(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    """XNysTrace with ``Omega`` and ``Y = A Omega`` in preallocated ``(m, n)`` buffers.

    Memory: ``3m`` ``n``-vectors in the operator's dtype: the two buffers and the
    shifted sketch ``Y + nu Omega`` whose ``R`` factor is computed in place.
    """
    from ..probes import _empty

    op = ctx.op
    om = _empty(op.backend, m, ctx.n, op.dtype, op.device)
    y = _empty(op.backend, m, ctx.n, op.dtype, op.device)
    st = {"k": 0}

    def round_fn(k: int) -> tuple:
        for k0 in range(st["k"], k, ctx.block):
            k1 = min(k, k0 + ctx.block)
            y[k0:k1] = ctx.apply(ctx.draw_into(om[k0:k1])).T
        st["k"] = max(st["k"], k)
        Om, Y = om[:k], y[:k]  # rows: vectors
        grams = (ctx.host(Om @ Y.T), ctx.host(Y @ Y.T), ctx.host(Om @ Om.T))
        s, se = _xnystrace_estimates(ctx, grams, k, lambda nu: _r_factor(ctx, _shifted(Y, Om, nu)))
        return float(np.mean(s)), se, s

    return _drive(round_fn, _START["xnystrace"], m, rtol)
