r"""Stochastic trace and diagonal estimation: Hutchinson, Hutch++, XTrace, XNysTrace, XDiag.

All estimators see the operator only through block products ``A @ V`` and return an
:class:`~spectra.Estimate` with a standard error.

* **Girard-Hutchinson** [1]_ [2]_: :math:`\hat t = \frac1m\sum_j z_j^T A z_j` for
  isotropic probes (:math:`E[zz^T] = I`); unbiased, variance
  :math:`2(\|A\|_F^2 - \sum_i A_{ii}^2)/m` for Rademacher probes.
* **Hutch++** [3]_, adaptive split [5]_: ``r`` sketch vectors give
  :math:`Q = \operatorname{orth}(AS)` (``2r`` products), :math:`\operatorname{tr}(Q^TAQ)`
  is exact and ``m - 2r`` probes run Hutchinson on :math:`(I - QQ^T)A(I - QQ^T)`. The
  sketch grows in blocks of ``max(1, m // 25)`` while the last block lowered the
  predicted variance (see :func:`_hutchpp_sketch`), at most to the thirds of [3]_: one
  block on a flat spectrum, a third of the budget on a decaying one.
* **XTrace** [4]_: the exchangeable, leave-one-out version of Hutch++. With test
  vectors :math:`\omega_1..\omega_k`, :math:`P_i` the projector onto
  :math:`\operatorname{range}(A\Omega_{-i})` (rank :math:`k-1`) and
  :math:`u_i = (I - P_i)\omega_i`,

  .. math:: \hat t_i = \operatorname{tr}(P_iA) + u_i^TAu_i, \qquad
            \hat t = \frac1k\sum_i \hat t_i,

  computed from one QR factorisation :math:`A\Omega = QR` by rank-one downdates in
  :math:`O(nk^2)` flops and :math:`2k` products.
* **XNysTrace** [4]_ (PSD operators): the same idea with the Nystrom approximation
  :math:`A_{(i)} = A\Omega_{-i}(\Omega_{-i}^TA\Omega_{-i})^{-1}(A\Omega_{-i})^T`,
  :math:`\hat t_i = \operatorname{tr}A_{(i)} + \omega_i^T(A - A_{(i)})\omega_i`,
  :math:`k` products.
* **XDiag** [4]_: the diagonal analogue of XTrace,
  :math:`\operatorname{diag}(P_iA) + \omega_i \odot (I - P_i)A\omega_i`.

**Improved (normalised) estimators** of [4]_: for rotation-invariant probes
(``"gaussian"``, ``"sphere"``) the direction of :math:`u_i` is uniform on the unit sphere
of :math:`\operatorname{range}(I - P_i)`, of dimension :math:`d = n - k + 1`, and
independent of :math:`P_i`, so :math:`E[d\,u_iu_i^T/\|u_i\|^2] = I - P_i` and

.. math:: \hat t_i = \operatorname{tr}(P_iA) + d\,\frac{u_i^TAu_i}{\|u_i\|^2}

is unbiased and *exact on multiples of the identity*. XNysTrace uses the same scaling
with :math:`P_i` the projector onto :math:`\operatorname{range}(\Omega_{-i})` (the
Nystrom residual :math:`A - A_{(i)}` vanishes on it), Hutch++ with :math:`d = n - r`.
Rademacher probes keep the unnormalised residual: they are not rotation invariant, but
already exact on diagonal matrices, which makes them the better choice for Hutchinson and
XDiag (diagonal estimation is not rotation invariant). ``probe=None`` picks the sphere
for Hutch++, XTrace and XNysTrace and Rademacher for Hutchinson and XDiag.

**Standard errors.** Hutchinson and Hutch++ report the sample deviation of their
independent (residual) probes over :math:`\sqrt m`. The leave-one-out estimates of the
X-methods share their sketch and are positively correlated, so
:math:`\mathrm{std}(\hat t_i)/\sqrt k` is optimistic (it covered about 80% of seeds at
two standard errors). They report the delete-one jackknife of the whole estimator,
:math:`\sqrt{\frac{k-1}{k}\sum_j(\hat t_{(-j)} - \bar t_{(\cdot)})^2}` with
:math:`\hat t_{(-j)}` the estimate from :math:`\Omega_{-j}`, which is conservative in
expectation for a symmetric function of i.i.d. test vectors (Efron and Stein [6]_). The
replicates need leave-two-out estimates; the removed plane of :math:`\hat t_{i,-j}` is
spanned by two known directions, so all :math:`k^2` of them cost :math:`O(k^3)` flops
(:math:`O(nk^2)` for XDiag).

References
----------
.. [1] D. Girard, "A fast 'Monte-Carlo cross-validation' procedure for large least
   squares problems with noisy data", Numer. Math. 56 (1989).
.. [2] M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix
   for Laplacian smoothing splines", Commun. Stat. Simul. Comput. 19 (1990).
.. [3] R. A. Meyer, C. Musco, C. Musco and D. P. Woodruff, "Hutch++: optimal stochastic
   trace estimation", SOSA (2021).
.. [4] E. N. Epperly, J. A. Tropp and R. J. Webber, "XTrace: making the most of every
   sample in stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45 (2024).
.. [5] D. Persson, A. Cortinovis and D. Kressner, "Improved variants of the Hutch++
   algorithm for trace estimation", SIAM J. Matrix Anal. Appl. 43 (2022).
.. [6] B. Efron and C. Stein, "The jackknife estimate of variance", Ann. Stat. 9 (1981).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla

from ._array import dtype_name, eps, from_numpy, to_numpy
from .operators import Operator, as_operator, require_square, require_symmetric
from .probes import PROBES, as_rng, draw
from .results import Estimate, warn_not_converged

__all__ = ["diagonal", "trace"]

TRACE_METHODS = ("hutchinson", "hutchpp", "xtrace", "xnystrace")
DIAGONAL_METHODS = ("hutchinson", "xdiag")
_MIN_BUDGET = {"hutchinson": 1, "hutchpp": 3, "xtrace": 2, "xnystrace": 2, "xdiag": 2}
_BLOCK_BYTES = 256 * 2**20  # default cap on an n x block array
_HUTCH_FIRST = 10  # Hutchinson probes before the first rtol test
_START = {"hutchinson": _HUTCH_FIRST, "xtrace": 8, "xdiag": 8, "xnystrace": 16}
#: Probe used by ``probe=None``: Rademacher where the estimator is not rotation invariant
#: (Hutchinson, XDiag), uniform on the sphere for the improved projection estimators.
DEFAULT_PROBES = {"hutchinson": "rademacher", "hutchpp": "sphere", "xtrace": "sphere",
                  "xnystrace": "sphere", "xdiag": "rademacher"}
_INVARIANT = ("gaussian", "sphere")  # rotation-invariant probes: improved residual scaling

# ---------------------------------------------------------------------------- context


class _Ctx:
    """The operator with its namespace, probe source and a product counter."""

    def __init__(self, op: Operator, probe: str, rng: Any, block_size: int) -> None:
        self.op, self.xp, self.n = op, op.xp, op.shape[0]
        self.probe, self.rng, self.block = probe, rng, block_size
        self.improved = probe in _INVARIANT
        self.used = 0
        self.blocks = 0

    def draw(self, k: int):
        return draw(self.probe, self.n, k, like=self.op, rng=self.rng)

    def dev(self, M: np.ndarray):
        return from_numpy(M, like=self.op)

    def apply(self, V):
        """``A V`` in column blocks of at most ``block`` products, checked for NaN/Inf."""
        k = V.shape[1]
        outs = []
        for j in range(0, k, self.block):
            out = self.op.matmat(V[:, j : j + self.block])
            b = out.shape[1]
            self.blocks += 1
            if not bool(self.xp.all(self.xp.isfinite(out))):
                raise ValueError(
                    f"the operator's product returned NaN or Inf in block {self.blocks} "
                    f"(products {self.used + 1} to {self.used + b} of this estimate); "
                    "check the operator"
                )
            self.used += b
            outs.append(out)
        return outs[0] if len(outs) == 1 else self.xp.concat(outs, axis=1)

    def host(self, X) -> np.ndarray:
        return to_numpy(X)


def _check_budget(num_matvecs: Any, method: str) -> int:
    lo = _MIN_BUDGET[method]
    if isinstance(num_matvecs, bool) or not isinstance(num_matvecs, (int, np.integer)):
        raise TypeError(
            f"num_matvecs must be an integer >= {lo} for method {method!r}, got {num_matvecs!r}"
        )
    if num_matvecs < lo:
        raise ValueError(
            f"num_matvecs must be an integer >= {lo} for method {method!r} "
            f"(a budget of n or more gives the exact answer), got {num_matvecs}"
        )
    return int(num_matvecs)


def _setup(
    op: Any, num_matvecs: Any, method: str, methods: tuple, probe: str | None, rtol: Any,
    block_size: Any, rng: Any, name: str,
) -> tuple[_Ctx, int]:
    if method not in methods:
        raise ValueError(f"unknown {name} method {method!r}; allowed: {', '.join(methods)}")
    if probe is None:
        probe = DEFAULT_PROBES[method]
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; allowed: {', '.join(PROBES)}")
    m = _check_budget(num_matvecs, method)
    if rtol is not None and not (isinstance(rtol, (int, float, np.floating)) and
                                 np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol must be a positive finite number or None, got {rtol!r}")
    op = as_operator(op)
    if method == "hutchinson":
        require_square(op, f"{name}(method='hutchinson')")
    else:
        require_symmetric(op, f"{name}(method={method!r})")
    if method == "xnystrace" and not op.psd:
        raise ValueError(
            "xnystrace needs a positive semi-definite operator; declare it with "
            "spectra.as_operator(A, psd=True), or use method='xtrace'"
        )
    itemsize = 4 if dtype_name(op.dtype) == "float32" else 8
    cap = max(1, _BLOCK_BYTES // (op.shape[0] * itemsize))
    if block_size is None:
        block = cap
    elif isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    else:
        block = int(block_size)
    return _Ctx(op, probe, as_rng(rng), block), m


def _met(value: Any, stderr: Any, rtol: float) -> bool:
    if np.ndim(value) == 0:
        return bool(stderr <= rtol * abs(value))
    return bool(np.linalg.norm(stderr) <= rtol * np.linalg.norm(value))


def _sem(samples: np.ndarray) -> float:
    """Standard error of the mean of exchangeable samples (``inf`` for fewer than two)."""
    if samples.size < 2:
        return float("inf")
    return float(np.std(samples, ddof=1) / np.sqrt(samples.size))


def _drive(
    round_fn: Callable[[int], tuple], k0: int, kmax: int, rtol: float | None,
    grow: Callable[[int, tuple], int] | None = None,
) -> tuple[tuple, int, bool]:
    """Run rounds of ``round_fn(k)`` (``k`` test vectors in all) until ``rtol`` is met.

    Without ``rtol`` one round uses the whole budget. With it, ``k`` doubles (or follows
    ``grow``) from ``k0`` until the standard error is small enough or ``k == kmax``.
    """
    k = kmax if rtol is None else min(k0, kmax)
    while True:
        out = round_fn(k)
        ok = rtol is None or _met(out[0], out[1], rtol)
        if ok or k >= kmax:
            return out, k, ok
        k = min(kmax, grow(k, out) if grow is not None else 2 * k)


# ---------------------------------------------------------------------------- exact


def _exact_diagonal(ctx: _Ctx) -> np.ndarray:
    """The diagonal from the ``n`` unit vectors, in blocks."""
    n, d = ctx.n, np.empty(ctx.n)
    for j0 in range(0, n, ctx.block):
        j1 = min(n, j0 + ctx.block)
        E = np.zeros((n, j1 - j0))
        E[np.arange(j0, j1), np.arange(j1 - j0)] = 1.0
        d[j0:j1] = np.diag(ctx.host(ctx.apply(ctx.dev(E))[j0:j1, :]))
    return d


# ---------------------------------------------------------------------------- Hutchinson


def _hutchinson(ctx: _Ctx, m: int, rtol: float | None, diag: bool) -> tuple[tuple, int, bool]:
    xp = ctx.xp
    state: dict[str, Any] = {"k": 0, "samples": [], "shift": None, "s1": 0.0, "s2": 0.0}

    def round_fn(k: int) -> tuple:
        while state["k"] < k:
            b = min(ctx.block, k - state["k"])
            Z = ctx.draw(b)
            P = xp.astype(Z * ctx.apply(Z), xp.float64)
            state["k"] += b
            if not diag:
                state["samples"].append(ctx.host(xp.sum(P, axis=0)))
                continue
            if state["shift"] is None:  # shifted sums keep the variance accurate
                state["shift"] = xp.mean(P, axis=1)
            P = P - state["shift"][:, None]
            state["s1"] = state["s1"] + xp.sum(P, axis=1)
            state["s2"] = state["s2"] + xp.sum(P * P, axis=1)
        if not diag:
            s = np.concatenate(state["samples"])
            return float(np.mean(s)), _sem(s), s
        kk = state["k"]
        s1, s2 = ctx.host(state["s1"]), ctx.host(state["s2"])
        value = ctx.host(state["shift"]) + s1 / kk
        if kk < 2:
            return value, np.full(ctx.n, np.inf), None
        var = np.maximum(s2 - s1**2 / kk, 0.0) / (kk - 1)
        return value, np.sqrt(var / kk), None

    def grow(k: int, out: tuple) -> int:
        # probes needed for the target if the variance estimate is right, at most doubling
        value, stderr = out[0], out[1]
        scale = np.linalg.norm(value) if diag else abs(value)
        err = np.linalg.norm(stderr) if diag else stderr
        need = k * (err / max(rtol * scale, 1e-300)) ** 2 if np.isfinite(err) else 2 * k
        return int(max(k + max(1, k // 4), min(2 * k, np.ceil(1.2 * need))))

    return _drive(round_fn, _START["hutchinson"], m, rtol, grow)


# ---------------------------------------------------------------------------- sketches


def _cat(xp: Any, a: Any, b: Any):
    """Columns of ``a`` then ``b`` (``a`` may be ``None``)."""
    return b if a is None else xp.concat([a, b], axis=1)


def _extend_basis(xp: Any, Q: Any, Ynew: Any):
    """Orthonormal columns extending ``Q`` so that the result spans ``[Q, Ynew]``.

    Householder QR of ``[Q, Ynew]`` keeps the whole basis orthonormal even when
    ``Ynew`` is (numerically) inside ``range(Q)``.
    """
    if Q is None:
        return xp.linalg.qr(Ynew)[0]
    k = Q.shape[1]
    Qf = xp.linalg.qr(xp.concat([Q, Ynew], axis=1))[0]
    return Qf[:, k:]


def _jackknife(reps: np.ndarray, axis: int = -1) -> Any:
    r"""Delete-one jackknife standard error from the replicates :math:`\hat t_{(-j)}`.

    :math:`\sqrt{\frac{k-1}{k}\sum_j(\hat t_{(-j)} - \bar t_{(\cdot)})^2}` (Efron and
    Stein: conservative in expectation for a symmetric function of i.i.d. test vectors).
    """
    k = reps.shape[axis]
    dev = reps - np.mean(reps, axis=axis, keepdims=True)
    return np.sqrt((k - 1) / k * np.sum(dev * dev, axis=axis))


class _Sketch:
    """Test vectors ``Omega``, ``Y = A Omega = Q R`` and ``Z = A Q``, grown in blocks."""

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.Om = self.Y = self.Q = self.Z = None
        self.R = np.zeros((0, 0))

    @property
    def k(self) -> int:
        return 0 if self.Om is None else self.Om.shape[1]

    def grow(self, k: int) -> None:
        ctx, xp = self.ctx, self.ctx.xp
        if k <= self.k:
            return
        Om = ctx.draw(k - self.k)
        Y = ctx.apply(Om)
        Qe = _extend_basis(xp, self.Q, Y)
        Ze = ctx.apply(Qe)
        self.Om, self.Y = _cat(xp, self.Om, Om), _cat(xp, self.Y, Y)
        self.Q, self.Z = _cat(xp, self.Q, Qe), _cat(xp, self.Z, Ze)
        self.R = ctx.host(self.Q.T @ self.Y)  # upper triangular up to rounding

    def small(self) -> dict[str, np.ndarray]:
        """The ``k x k`` projections used by XTrace, on the host in float64."""
        Q, Z, Om, Y, xp = self.Q, self.Z, self.Om, self.Y, self.ctx.xp
        f64 = xp.float64
        H = self.ctx.host(Q.T @ Z)
        return {
            "H": 0.5 * (H + H.T), "W": self.ctx.host(Q.T @ Om), "T": self.ctx.host(Z.T @ Om),
            "d": self.ctx.host(xp.sum(xp.astype(Om * Y, f64), axis=0)), "R": self.R,
            "o2": self.ctx.host(xp.sum(xp.astype(Om * Om, f64), axis=0)),
        }


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
    :func:`_xtrace_estimates` the sums are ``n x k x k`` products.
    """
    ctx, xp = sk.ctx, sk.ctx.xp
    S = _loo_directions(sk.R, ctx.op.dtype)
    k = S.shape[1]
    SR = S.T @ sk.R
    alpha = np.diag(SR).copy()  # s_i^T r_i
    Sd = ctx.dev(S)
    X, V = sk.Q @ Sd, sk.Z @ Sd
    f64 = xp.float64
    D = xp.sum(xp.astype(sk.Q * sk.Z, f64), axis=1)
    OX = sk.Om * X
    E = xp.astype(OX * ctx.dev(alpha)[None, :] - X * V, f64) + D[:, None]
    mean = xp.mean(E, axis=1)
    if k < 2:
        return ctx.host(mean), np.full(ctx.n, np.inf)
    rho = S.T @ S
    Cc = 1.0 / _pair_den(rho)
    np.fill_diagonal(Cc, 0.0)
    Ec, beta = rho * Cc, SR.T  # beta[i, j] = s_j^T r_i
    C1 = Cc * alpha[:, None] - Ec * beta
    C2 = Cc * beta - Ec * alpha[:, None]
    XV = X * V
    dv = ctx.dev
    tot = (XV @ dv(-Cc) - XV * dv(np.sum(Cc, axis=0))[None, :] + V * (X @ dv(Ec))
           + X * (V @ dv(Ec)) + OX @ dv(C1) + X * (sk.Om @ dv(C2)))
    reps = xp.astype(tot, f64) / (k - 1) + D[:, None]
    dev = reps - xp.mean(reps, axis=1)[:, None]
    se = xp.sqrt((k - 1) / k * xp.sum(dev * dev, axis=1))
    return ctx.host(mean), ctx.host(se)


def _xnystrace_estimates(ctx: _Ctx, Om: Any, Y: Any) -> tuple[np.ndarray, float]:
    """The ``k`` leave-one-out XNysTrace estimates of a PSD operator and their jackknife.

    The shift ``nu = sqrt(n) eps ||Y||_2`` (Tropp et al. 2017) makes the Cholesky factor
    safe in floating point; its contribution ``nu n`` is subtracted exactly.
    With ``Y_nu = Y + nu Omega = Q R``, ``Omega^T Y_nu = C^T C`` (Cholesky),
    ``G^{-1} = (C^T C)^{-1}``, ``B = R C^{-1}`` and ``N = G^{-1} Y_nu^T Y_nu G^{-1}``:
    ``tr(A_(i)) = ||B||_F^2 - N_ii / G^{-1}_ii`` and the residual is the Schur complement
    ``omega_i^T (A_nu - A_(i)) omega_i = 1 / G^{-1}_ii``; the improved estimate scales it
    by ``(n - k + 1) / ||u_i||^2`` with ``||u_i||^2 = 1 / [(Omega^T Omega)^{-1}]_ii``.
    Leave-two-out quantities follow from the same ``k x k`` inverses by one rank-one
    downdate.
    """
    xp, n, k = ctx.xp, ctx.n, Om.shape[1]
    gram = ctx.host(Y.T @ Y)
    ynorm = float(np.sqrt(max(np.linalg.eigvalsh(0.5 * (gram + gram.T))[-1], 0.0)))  # ||Y||_2
    if ynorm == 0.0:
        return np.zeros(k), 0.0
    nu = float(np.sqrt(n) * eps(ctx.op.dtype) * ynorm)
    for _ in range(4):  # a few larger shifts for rounding; never enough to hide an indefinite A
        Ynu = Y + nu * Om
        G = ctx.host(Om.T @ Ynu)
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
    R = ctx.host(xp.linalg.qr(Ynu)[1])
    B = sla.solve_triangular(C, R.T, trans="T", lower=False).T
    U = sla.solve_triangular(C, np.eye(k), trans="T", lower=False)  # C^{-T}
    Gi = U.T @ U
    BU = B @ U
    N = BU.T @ BU
    g = np.diag(Gi).copy()
    trB = np.sum(B * B)
    scale1 = scale2 = 1.0
    if ctx.improved:
        Oi = _gram_inverse(ctx.host(Om.T @ Om))
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
    sk = _Sketch(ctx)

    def round_fn(k: int) -> tuple:
        sk.grow(k)
        s, se = _xtrace_estimates(sk.small(), ctx.n, ctx.improved, ctx.op.dtype)
        return float(np.mean(s)), se, s

    return _drive(round_fn, _START["xtrace"], m // 2, rtol)


def _xdiag(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    sk = _Sketch(ctx)

    def round_fn(k: int) -> tuple:
        sk.grow(k)
        return (*_xdiag_moments(sk), None)

    return _drive(round_fn, _START["xdiag"], m // 2, rtol)


def _xnystrace(ctx: _Ctx, m: int, rtol: float | None) -> tuple[tuple, int, bool]:
    xp = ctx.xp
    st: dict[str, Any] = {"Om": None, "Y": None}

    def round_fn(k: int) -> tuple:
        have = 0 if st["Om"] is None else st["Om"].shape[1]
        if k > have:
            Om = ctx.draw(k - have)
            Y = ctx.apply(Om)
            st["Om"], st["Y"] = _cat(xp, st["Om"], Om), _cat(xp, st["Y"], Y)
        s, se = _xnystrace_estimates(ctx, st["Om"], st["Y"])
        return float(np.mean(s)), se, s

    return _drive(round_fn, _START["xnystrace"], m, rtol)


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


# ---------------------------------------------------------------------------- public


def _message(method: str, value: Any, stderr: Any, used: int, rtol: Any, ok: bool) -> str:
    err = float(np.linalg.norm(stderr)) if np.ndim(stderr) else float(stderr)
    scale = float(np.linalg.norm(value)) if np.ndim(value) else abs(float(value))
    what = "norm of the standard errors" if np.ndim(value) else "standard error"
    if rtol is None:
        return f"{method}: {used} products, {what} {err:.3g}"
    if ok:
        return (f"{method}: converged after {used} products, {what} {err:.3g} "
                f"<= rtol * |value| = {rtol * scale:.3g}")
    return (f"{method}: not converged: {what} {err:.3g} > rtol * |value| = {rtol * scale:.3g} "
            f"after the whole budget of {used} products; raise num_matvecs or rtol")


def trace(
    op: Any,
    num_matvecs: int,
    *,
    method: str = "xtrace",
    probe: str | None = None,
    rtol: float | None = None,
    block_size: int | None = None,
    rng: Any = None,
) -> Estimate:
    r"""Estimate :math:`\operatorname{tr}(A)` from products with ``A``.

    Parameters
    ----------
    op : Operator or matrix-like
        Square operator (see :func:`~spectra.as_operator`); symmetric for ``"hutchpp"``,
        ``"xtrace"`` and ``"xnystrace"`` (tested at random when undeclared), and declared
        positive semi-definite (``as_operator(A, psd=True)``) for ``"xnystrace"``.
    num_matvecs : int
        Budget of products. At least 1 (hutchinson), 3 (hutchpp) or 2 (xtrace,
        xnystrace). XTrace uses ``k = num_matvecs // 2`` test vectors and ``2k``
        products. A budget of ``n`` or more computes the exact trace from the ``n``
        unit vectors (``n`` products, standard error 0).
    method : {"xtrace", "hutchinson", "hutchpp", "xnystrace"}
        Estimator (see Notes).
    probe : {None, "rademacher", "gaussian", "sphere"}
        Distribution of the random test vectors. ``None`` (default): ``"rademacher"`` for
        hutchinson, ``"sphere"`` for hutchpp, xtrace and xnystrace, which then use the
        improved residual scaling (exact on multiples of the identity; see Notes).
        ``"gaussian"`` gives the same improved estimators (only directions matter);
        ``"rademacher"`` the original, unnormalised ones.
    rtol : float, optional
        Stop as soon as ``stderr <= rtol * |value|``. Hutchinson and Hutch++ add probes
        (at least 10 before the first test); XTrace and XNysTrace double their test
        vectors from a small start, reusing every product. If the budget runs out
        first the result has ``converged=False`` and a
        :class:`~spectra.ConvergenceWarning` is emitted.
    block_size : int, optional
        Most columns per call of ``op.matmat``. Default: everything at once, capped so
        that an ``n x block_size`` array stays under 256 MiB.
    rng : None, int, numpy.random.Generator or torch.Generator
        Source of the test vectors.

    Returns
    -------
    Estimate
        ``value`` and ``stderr`` (floats), ``num_matvecs`` (products used), ``samples``
        (the per-probe or leave-one-out estimates whose mean is ``value``).

    Raises
    ------
    ValueError
        Unknown method or probe, budget below the method's minimum, a non-square or
        (where needed) non-symmetric operator, ``xnystrace`` without ``psd=True``, or a
        product returning NaN/Inf (the block is named).
    TypeError
        A non-integer budget.

    Notes
    -----
    Hutchinson: :math:`\hat t = \frac1m \sum_j z_j^TAz_j`, standard error
    :math:`\mathrm{std}(z_j^TAz_j)/\sqrt m`. Hutch++ [3]_ [5]_: ``r`` sketch vectors
    chosen adaptively (one block of ``max(1, m // 25)`` on a flat spectrum, at most
    ``m // 3``), :math:`Q = \operatorname{orth}(AS)`, ``g = m - 2r`` probes,
    :math:`u_j = (I-QQ^T)g_j` and
    :math:`\hat t = \operatorname{tr}(Q^TAQ) + \frac1g\sum_j (n-r)\,u_j^TAu_j/\|u_j\|^2`
    (rotation-invariant probes; :math:`u_j^TAu_j` for Rademacher); the standard error is
    that of the probe part, which is independent of ``Q``.
    XTrace and XNysTrace [4]_ average ``k`` exchangeable leave-one-out estimates
    :math:`\hat t_i` (module notes) and report the delete-one jackknife standard error
    of the whole estimator, which accounts for the correlation of the :math:`\hat t_i`.
    With :math:`A\Omega = QR`, :math:`Z = AQ`, :math:`H = Q^TZ`, :math:`W = Q^T\Omega`,
    :math:`T = Z^T\Omega`, :math:`s_i = R^{-T}e_i/\|R^{-T}e_i\|` and
    :math:`c_i = w_i - s_i s_i^T w_i`, XTrace is

    .. math:: \hat t_i = \operatorname{tr}H - s_i^THs_i + \sigma_i\,(\omega_i^TA\omega_i
              - t_i^Tc_i - c_i^Tr_i + c_i^THc_i),

    with :math:`\sigma_i = (n-k+1)/(\|\omega_i\|^2 - \|c_i\|^2)` for rotation-invariant
    probes (:math:`\|\omega_i\|^2 - \|c_i\|^2 = \|(I-P_i)\omega_i\|^2`) and 1 for
    Rademacher. On a flat spectrum the improved XNysTrace and Hutch++ match Hutchinson;
    XTrace spends half of its products on :math:`AQ`, which there buys only the exact
    trace of a ``k``-dimensional subspace, and its error is about
    :math:`\sqrt2(1-k/n)` times Hutchinson's.

    XTrace is exact when ``A`` has rank below ``k - 1``, and its error follows the tail
    of the spectrum beyond the ``k``-th eigenvalue: on fast-decaying spectra it is orders
    of magnitude more accurate than Hutchinson at the same budget [4]_.

    References
    ----------
    .. [1] D. Girard, Numer. Math. 56 (1989).
    .. [2] M. F. Hutchinson, Commun. Stat. Simul. Comput. 19 (1990).
    .. [3] R. A. Meyer, C. Musco, C. Musco and D. P. Woodruff, "Hutch++: optimal
       stochastic trace estimation", SOSA (2021).
    .. [4] E. N. Epperly, J. A. Tropp and R. J. Webber, "XTrace: making the most of every
       sample in stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45 (2024).
    .. [5] D. Persson, A. Cortinovis and D. Kressner, "Improved variants of the Hutch++
       algorithm for trace estimation", SIAM J. Matrix Anal. Appl. 43 (2022).

    Examples
    --------
    >>> import numpy as np, spectra
    >>> lam = 1.0 / np.arange(1, 301) ** 2
    >>> A = spectra.testing.matrix_from_eigenvalues(lam, rng=0)
    >>> est = spectra.trace(A, 60, rng=0)
    >>> est.num_matvecs, bool(abs(est.value - lam.sum()) < 1e-3 * lam.sum())
    (60, True)
    >>> spectra.trace(A, 300, method="hutchinson").stderr  # exact at full budget
    0.0
    """
    ctx, m = _setup(op, num_matvecs, method, TRACE_METHODS, probe, rtol, block_size, rng,
                    "trace")
    if m >= ctx.n:
        value = float(np.sum(_exact_diagonal(ctx)))
        return Estimate(value, 0.0, ctx.used, method, True,
                        f"{method}: exact trace from all {ctx.n} unit vectors "
                        f"(num_matvecs >= n = {ctx.n})", np.array([value]))
    run = {"hutchinson": lambda: _hutchinson(ctx, m, rtol, diag=False), "hutchpp": _hutchpp,
           "xtrace": _xtrace, "xnystrace": _xnystrace}[method]
    (value, stderr, samples), _, ok = run() if method == "hutchinson" else run(ctx, m, rtol)
    msg = _message(method, value, stderr, ctx.used, rtol, ok)
    if not ok:
        warn_not_converged(msg)
    return Estimate(float(value), float(stderr), ctx.used, method, ok, msg, samples)


def diagonal(
    op: Any,
    num_matvecs: int,
    *,
    method: str = "xdiag",
    probe: str | None = None,
    rtol: float | None = None,
    block_size: int | None = None,
    rng: Any = None,
) -> Estimate:
    r"""Estimate the diagonal of ``A`` from products with ``A``.

    Parameters
    ----------
    op : Operator or matrix-like
        Square operator; symmetric for ``"xdiag"`` (tested at random when undeclared).
    num_matvecs : int
        Budget of products: at least 1 (hutchinson) or 2 (xdiag, which uses
        ``k = num_matvecs // 2`` test vectors and ``2k`` products). A budget of ``n`` or
        more reads the exact diagonal off the ``n`` unit vectors.
    method : {"xdiag", "hutchinson"}
        Estimator (see Notes).
    probe : {None, "rademacher", "gaussian", "sphere"}
        Distribution of the random test vectors; ``None`` (default) is Rademacher for
        both methods. Rademacher probes are exact on diagonal matrices; diagonal
        estimation is not rotation invariant, so the normalised residual of
        :func:`trace` does not apply, and Gaussian or sphere probes (unbiased too) are
        about 3x less accurate on a flat spectrum.
    rtol : float, optional
        Stop as soon as ``||stderr||_2 <= rtol * ||value||_2`` (norms over the entries);
        otherwise as for :func:`trace`, with ``converged=False`` and a warning when the
        budget runs out first.
    block_size : int, optional
        Most columns per call of ``op.matmat`` (default: all, capped at 256 MiB per
        ``n x block_size`` array).
    rng : None, int, numpy.random.Generator or torch.Generator
        Source of the test vectors.

    Returns
    -------
    Estimate
        ``value`` and ``stderr`` are float64 numpy arrays of length ``n`` (the standard
        error entry by entry); ``samples`` is ``None``.

    Raises
    ------
    ValueError
        As for :func:`trace`.
    TypeError
        A non-integer budget.

    Notes
    -----
    Hutchinson (Bekas, Kokiopoulou and Saad): :math:`\hat d = \frac1m\sum_j z_j \odot
    Az_j`, unbiased for isotropic probes. XDiag [1]_ averages the ``k`` exchangeable
    leave-one-out estimates

    .. math:: \hat d_i = \operatorname{diag}(Q_{(i)}Q_{(i)}^TA)
              + \omega_i \odot (I - Q_{(i)}Q_{(i)}^T)A\omega_i
              = \operatorname{rowsum}(Q \odot Z) - (Qs_i)\odot(Zs_i)
              + (s_i^Tr_i)\,\omega_i \odot Qs_i,

    with :math:`A\Omega = QR`, :math:`Z = AQ` and :math:`s_i` as in :func:`trace`; the
    standard error of each entry is the delete-one jackknife of the whole estimator
    (the estimates from :math:`\Omega_{-j}`, ``j = 1..k``, formed from leave-two-out
    terms in :math:`O(nk^2)` flops), which accounts for the correlation of the
    leave-one-out estimates. Hutchinson's standard error is the sample deviation of the
    probes over :math:`\sqrt m`.

    References
    ----------
    .. [1] E. N. Epperly, J. A. Tropp and R. J. Webber, "XTrace: making the most of every
       sample in stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45 (2024).

    Examples
    --------
    >>> import numpy as np, spectra
    >>> A = spectra.testing.matrix_from_eigenvalues(0.5 ** np.arange(200), rng=0)
    >>> est = spectra.diagonal(A, 80, rng=1)
    >>> est.value.shape, bool(np.max(np.abs(est.value - np.diag(A))) < 1e-6)
    ((200,), True)
    """
    ctx, m = _setup(op, num_matvecs, method, DIAGONAL_METHODS, probe, rtol, block_size, rng,
                    "diagonal")
    if m >= ctx.n:
        d = _exact_diagonal(ctx)
        return Estimate(d, np.zeros(ctx.n), ctx.used, method, True,
                        f"{method}: exact diagonal from all {ctx.n} unit vectors "
                        f"(num_matvecs >= n = {ctx.n})")
    if method == "hutchinson":
        (value, stderr, _), _, ok = _hutchinson(ctx, m, rtol, diag=True)
    else:
        (value, stderr, _), _, ok = _xdiag(ctx, m, rtol)
    msg = _message(method, value, stderr, ctx.used, rtol, ok)
    if not ok:
        warn_not_converged(msg)
    return Estimate(np.asarray(value, dtype=np.float64), np.asarray(stderr, dtype=np.float64),
                    ctx.used, method, ok, msg)
