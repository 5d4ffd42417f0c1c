r"""Gauss and Gauss-Radau quadrature rules from a Lanczos tridiagonal, and their brackets.

``k`` Lanczos steps from a unit vector ``q`` give the Jacobi matrix ``T_k`` (diagonal
``alpha``, off-diagonal ``beta``) and the next coefficient ``beta_k`` (the norm of the
final residual). For the spectral measure :math:`\mu_q = \sum_i (q^T u_i)^2
\delta_{\lambda_i}` they give

* the ``k``-point **Gauss** rule: the eigenvalues of ``T_k`` and the squared first
  components of its eigenvectors, exact for polynomials of degree ``2k - 1``;
* the ``(k+1)``-point **Gauss-Radau** rule with one node prescribed at ``c``: the
  eigen-decomposition of ``T_k`` bordered by ``beta_k`` and the diagonal entry
  :math:`c + \beta_k^2 e_k^T (T_k - cI)^{-1} e_k` (Golub 1973), exact for degree ``2k``.

Their errors are (Golub & Meurant 1994, 2010, Thm. 6.4)

.. math::

   \int f\,d\mu - G_k(f) = \frac{f^{(2k)}(\eta)}{(2k)!} \int \prod_j (\lambda - \theta_j)^2
   d\mu, \qquad
   \int f\,d\mu - R^{(c)}_{k}(f) = \frac{f^{(2k+1)}(\eta)}{(2k+1)!}
   \int (\lambda - c) \prod_j (\lambda - \tilde\theta_j)^2 d\mu,

with ``eta`` in the spectral interval. With ``a <= lambda_min`` and ``b >= lambda_max``
the factor ``lambda - c`` has one sign for ``c = a`` and the other for ``c = b``; so when
``f^{(2k+1)}`` keeps one sign on ``[a, b]`` (``1/x``, ``log x``, ``x^p`` on a positive
interval, ``exp``), the two Radau rules **bracket** the integral, whichever the sign.
See :doc:`/theory/slq_brackets`.

References
----------
.. [1] G. H. Golub, "Some modified matrix eigenvalue problems", SIAM Review 15 (1973).
.. [2] G. H. Golub, G. Meurant, "Matrices, moments and quadrature", in *Numerical
   Analysis 1993*, Pitman Res. Notes Math. 303 (1994).
.. [3] G. H. Golub, G. Meurant, *Matrices, Moments and Quadrature with Applications*,
   Princeton, 2010, chapter 6.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh_tridiagonal

from .results import LanczosResult

__all__ = [
    "Bracket", "ProbeRound", "gauss_rule", "probe_round", "quadrature_bracket", "radau_rule",
    "next_steps", "random_start_margin", "ritz_interval", "round_message",
    "rounding_sensitivity", "singular_message", "spectral_interval", "standard_error",
]


def gauss_rule(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (ascending) and weights (summing to one) of the Gauss rule of a Jacobi matrix.

    Parameters
    ----------
    alpha : ndarray, shape ``(k,)``
        Diagonal.
    beta : ndarray, shape ``(k - 1,)``
        Off-diagonal.
    """
    alpha = np.asarray(alpha, dtype=float)
    if alpha.size == 1:
        return alpha.copy(), np.ones(1)
    theta, S = eigh_tridiagonal(alpha, np.asarray(beta, dtype=float))
    return theta, S[0, :] ** 2


def radau_rule(alpha: np.ndarray, beta: np.ndarray, beta_next: float,
               node: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Gauss-Radau rule with one node prescribed at ``node`` outside the Gauss nodes.

    The Jacobi matrix is bordered by ``beta_next`` and the diagonal entry
    :math:`c + \beta_k^2 e_k^T (T_k - cI)^{-1} e_k`, computed from the eigen-decomposition
    of ``T_k`` (all terms of one sign when ``c`` lies outside the Ritz interval).

    Parameters
    ----------
    alpha, beta : ndarray
        The Jacobi matrix ``T_k``.
    beta_next : float
        ``beta_k``, the norm of the Lanczos residual after step ``k``; ``0`` after a
        breakdown, when the Gauss rule is exact and is returned.
    node : float
        The prescribed node ``c``, at or below the smallest or at or above the largest
        eigenvalue of ``T_k``.

    Returns
    -------
    nodes, weights : ndarray
        ``k + 1`` nodes (ascending) and weights summing to one.
    """
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    if beta_next == 0.0:
        return gauss_rule(alpha, beta)
    if alpha.size == 1:
        theta, last = alpha.copy(), np.ones(1)
    else:
        theta, S = eigh_tridiagonal(alpha, beta)
        last = S[-1, :]
    gap = theta - node
    if not (np.all(gap > 0) or np.all(gap < 0)):
        raise ValueError(f"the Radau node {node:.6g} lies inside the Ritz interval "
                         f"[{theta[0]:.6g}, {theta[-1]:.6g}]")
    corner = node + beta_next**2 * float(np.sum(last**2 / gap))
    nodes, V = eigh_tridiagonal(np.append(alpha, corner), np.append(beta, beta_next))
    return nodes, V[0, :] ** 2


@dataclass(frozen=True)
class Bracket:
    """Quadrature values of one probe: Gauss, Gauss-Radau at both ends, half-step Gauss.

    ``lower``/``upper`` are the smaller and larger Radau values: a rigorous bracket of
    the integral when ``f^{(2k+1)}`` keeps one sign on ``[a, b]`` (infinite when ``f`` is
    not finite at an end, or at 0 inside ``[a, b]``: a pole such as that of ``1/x``).
    ``half`` is the Gauss value of the leading ``k // 2`` steps
    (``nan`` when ``k == 1``), for a bias estimate when no bracket holds.
    """

    gauss: float
    lower: float
    upper: float
    half: float


def _integral(f: Callable, nodes: np.ndarray, weights: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        vals = np.asarray(f(nodes), dtype=float)
    if vals.shape != nodes.shape:
        raise ValueError(f"f must map an array of Ritz values elementwise; got shape "
                         f"{vals.shape} for input shape {nodes.shape}")
    ok = np.isfinite(vals) | (weights == 0)
    if not np.all(ok):
        return float("nan")
    return float(np.sum(weights[weights > 0] * vals[weights > 0]))


def quadrature_bracket(alpha: np.ndarray, beta: np.ndarray, beta_next: float, f: Callable,
                       lo: float, hi: float) -> Bracket:
    """Gauss value of ``f`` and its Gauss-Radau bracket with nodes prescribed at ``lo``, ``hi``.

    Parameters
    ----------
    alpha, beta, beta_next
        As for :func:`radau_rule`; the measure has unit mass.
    f : callable
        Vectorised.
    lo, hi : float
        Bounds of the spectrum, ``lo <= lambda_min`` and ``hi >= lambda_max``. They are
        moved just outside the Ritz interval when they touch it (which keeps them bounds).

    Returns
    -------
    Bracket
    """
    k = int(np.asarray(alpha).size)
    theta, w = gauss_rule(alpha, beta)
    g = _integral(f, theta, w)
    if not np.isfinite(g):
        with np.errstate(all="ignore"):
            bad = theta[~np.isfinite(np.asarray(f(theta), dtype=float))]
        raise ValueError(f"f is not finite at Ritz value(s) {bad[:3]} (Ritz values lie in "
                         f"the spectral interval): A has eigenvalues where f is undefined or "
                         f"singular (e.g. a singular A for 1/x or log); check f's domain")
    half = float("nan")
    if k > 1:
        h = k // 2
        half = _integral(f, *gauss_rule(alpha[:h], beta[: h - 1]))
    if beta_next == 0.0:  # invariant Krylov space: the Gauss rule is exact
        return Bracket(g, g, g, half)
    span = max(float(theta[-1] - theta[0]), abs(float(theta[-1])), abs(float(theta[0])))
    pad = 1e-9 * span + np.finfo(float).tiny
    a = min(lo, float(theta[0]) - pad)
    b = max(hi, float(theta[-1]) + pad)
    ends = np.array([a, b, 0.0] if a < 0.0 < b else [a, b])
    if not np.isfinite(_integral(f, ends, np.ones(ends.size))):
        return Bracket(g, -np.inf, np.inf, half)  # f is not smooth on [a, b]
    ra = _integral(f, *radau_rule(alpha, beta, beta_next, a))
    rb = _integral(f, *radau_rule(alpha, beta, beta_next, b))
    if not (np.isfinite(ra) and np.isfinite(rb)):
        return Bracket(g, -np.inf, np.inf, half)
    return Bracket(g, min(ra, rb), max(ra, rb), half)


def ritz_interval(alpha: np.ndarray, beta: np.ndarray,
                  beta_next: float) -> tuple[float, float, float, float]:
    r"""Extreme Ritz values and the interval widened by their residuals.

    Returns ``(theta_1 - r_1, theta_k + r_k, theta_1, theta_k)`` with
    :math:`r_j = \beta_k |s_{kj}|`, the residual norm of Ritz pair ``j``: an eigenvalue
    of ``A`` lies within ``r_j`` of ``theta_j``. The widened ends estimate the spectral
    interval; they bound it once the extreme Ritz values have found the extreme
    eigenvalues (which random starts do quickly for isolated ends).
    """
    alpha = np.asarray(alpha, dtype=float)
    if alpha.size == 1:
        t = float(alpha[0])
        return t - beta_next, t + beta_next, t, t
    theta, S = eigh_tridiagonal(alpha, np.asarray(beta, dtype=float))
    r = beta_next * np.abs(S[-1, [0, -1]])
    return (float(theta[0] - r[0]), float(theta[-1] + r[1]), float(theta[0]),
            float(theta[-1]))


# ------------------------------------------------------- per-probe error bars of SLQ
#: Relative Ritz residual below which an estimated spectral end is trusted as a bound.
SETTLED_RTOL = 1e-8


def rounding_sensitivity(f: Callable, rules: list[tuple[np.ndarray, np.ndarray]],
                         scale: float) -> tuple[float, float]:
    """Change of ``sum w f(theta)`` when every node moves by ``64 eps`` of the scale.

    Returns the change (the larger of the two directions that stay finite; ``inf`` when
    neither does) and the magnitude ``sum w |f(theta)|`` to compare it with (which does
    not vanish when the sum cancels). Nodes are in units of ``scale``.
    """
    big = max(float(np.max(np.abs(t))) for t, _ in rules)
    d = 64.0 * np.finfo(float).eps * big
    out, mag = 0.0, 0.0
    with np.errstate(all="ignore"):
        for t, w in rules:
            vals = w * f(t * scale)
            base = float(np.sum(vals))
            mag += float(np.sum(np.abs(vals)))
            moves = [abs(float(np.sum(w * f((t + s) * scale))) - base) for s in (d, -d)]
            moves = [m for m in moves if np.isfinite(m)]
            out += max(moves) if moves else np.inf
    return out, mag


@dataclass
class ProbeRound:
    """Per-probe values of one Lanczos round (units of ``tr f(A)``)."""

    values: np.ndarray
    half_widths: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    bounds: tuple[float, float]
    rules: list[tuple[np.ndarray, np.ndarray]]
    k: int
    rigorous: bool


def spectral_interval(res: LanczosResult, n: int, lo: float | None, hi: float | None,
                      psd: bool, scale: float, positive: bool) -> tuple[float, float, bool]:
    """Spectral bounds for the Radau rules, in units of ``A / scale``.

    Given ends are used (and checked against the Ritz values); missing ones are
    estimated from the extreme Ritz values over all probes, widened by
    :func:`random_start_margin`. Also returns whether both ends are trusted: given,
    or estimated with that margin (not trusted when the run is too short for it).
    """
    ends = []
    for i in range(res.alpha.shape[0]):
        s = int(res.steps[i])
        ends.append(ritz_interval(res.alpha[i, :s], res.beta[i, : s - 1], res.beta[i, s - 1]))
    e = np.array(ends)
    t_min, t_max = float(e[:, 2].min()), float(e[:, 3].max())
    if positive and t_min <= 0:
        raise ValueError(f"logdet needs a positive definite operator; an eigenvalue estimate "
                         f"{t_min * scale:.3g} <= 0 was found (A has an eigenvalue at or "
                         "below it)")
    slack = 1e-10 * max(abs(t_min), abs(t_max))
    if lo is not None and lo / scale > t_min + slack:
        raise ValueError(f"spectrum_bounds[0] = {lo:.6g} is not a lower bound of the spectrum: "
                         f"a Ritz value {t_min * scale:.6g} lies below it")
    if hi is not None and hi / scale < t_max - slack:
        raise ValueError(f"spectrum_bounds[1] = {hi:.6g} is not an upper bound of the spectrum: "
                         f"a Ritz value {t_max * scale:.6g} lies above it")
    eps = random_start_margin(n, int(res.alpha.shape[1]), res.alpha.shape[0])
    if eps < 0.5:  # Kuczynski-Wozniakowski: the extreme Ritz values are near the ends
        a, b = _widened(t_min, t_max, lo, hi, scale, eps)
        ok = True
    else:  # too few steps for that bound: the residual-widened interval, a heuristic
        settled = SETTLED_RTOL * max(abs(t_min), abs(t_max))
        ia, ib = int(np.argmin(e[:, 0])), int(np.argmax(e[:, 1]))
        a = float(e[ia, 0]) if lo is None else lo / scale
        b = float(e[ib, 1]) if hi is None else hi / scale
        ok = ((lo is not None or e[ia, 2] - e[ia, 0] <= settled)
              and (hi is not None or e[ib, 1] - e[ib, 3] <= settled))
    if lo is None and psd and a < 0:
        a = 0.0
    return a, b, bool(ok)


#: Probability allowed for an estimated spectral end to miss the spectrum.
END_FAILURE = 1e-10


def random_start_margin(n: int, k: int, p: int) -> float:
    r"""Relative margin ``eps`` by which ``k`` Lanczos steps may miss an end of the spectrum.

    For a start uniform on the sphere, :math:`P(\theta_k < \lambda_{\max} - \epsilon
    (\lambda_{\max} - \lambda_{\min})) \le C \sqrt n\, e^{-(2k-1)\sqrt\epsilon}`
    (Kuczynski & Wozniakowski 1992, applied to ``A - lambda_min I``; ``C = 1.648`` there,
    4 here for margin), and likewise at the lower end. The most extreme of ``p``
    independent probes misses only if all do, so both ends hold with probability
    ``1 - END_FAILURE`` for the ``eps`` returned. Rademacher probes are not uniform on
    the sphere; for them the bound is the usual heuristic.
    """
    q = (0.5 * END_FAILURE) ** (1.0 / p)
    return float((np.log(4.0 * np.sqrt(n) / q) / (2 * k - 1)) ** 2)


def _widened(t_min: float, t_max: float, lo: float | None, hi: float | None, scale: float,
             eps: float) -> tuple[float, float]:
    """Ends ``a <= t_min``, ``b >= t_max`` with ``t_min - a = eps (b - a) = b - t_max``."""
    if lo is not None and hi is not None:
        return lo / scale, hi / scale
    if lo is not None:
        a = lo / scale
        return a, (t_max - eps * a) / (1.0 - eps)
    if hi is not None:
        b = hi / scale
        return (t_min - eps * b) / (1.0 - eps), b
    w = (t_max - t_min) / (1.0 - 2.0 * eps)
    return t_min - eps * w, t_max + eps * w


def probe_round(res: LanczosResult, f: Callable, bracket: bool, bounds: tuple[float, float],
                scale: float, given: bool) -> ProbeRound:
    """Per-probe values and bias bounds (``given``: the spectral bounds were given)."""
    def fs(x: np.ndarray) -> np.ndarray:
        return f(x * scale)

    p = res.alpha.shape[0]
    vals, hw, low, up, rules = (np.empty(p), np.empty(p), np.empty(p), np.empty(p), [])
    held = bracket and given  # every probe bracketed, with trusted ends
    for i in range(p):
        s = int(res.steps[i])
        a, b, bn = res.alpha[i, :s], res.beta[i, : s - 1], float(res.beta[i, s - 1])
        br = quadrature_bracket(a, b, bn, fs, *bounds)
        z2 = float(res.start_norms[i]) ** 2
        nodes, w = gauss_rule(a, b)
        rules.append((nodes, z2 * w))
        # the change from k // 2 to k steps: the bias estimate where no bracket holds
        kd = 0.0 if bn == 0.0 else (z2 * abs(br.gauss - br.half) if s > 1 else np.inf)
        if bracket and np.isfinite(br.upper - br.lower):
            vals[i] = z2 * 0.5 * (br.lower + br.upper)
            hw[i] = z2 * 0.5 * (br.upper - br.lower)
            if not given:  # estimated ends make the bracket a heuristic: floor it by kd
                hw[i] = max(hw[i], kd)
        else:
            vals[i], hw[i] = z2 * br.gauss, kd
            held = held and bn == 0.0  # (a breakdown probe is exact)
        low[i], up[i] = vals[i] - hw[i], vals[i] + hw[i]
    rigorous = bool(held)
    return ProbeRound(vals, hw, low, up, (bounds[0] * scale, bounds[1] * scale), rules,
                  int(res.alpha.shape[1]), rigorous)


def standard_error(values: np.ndarray) -> float:
    """Spread of the probe values over ``sqrt(p)``, scaled so that no square overflows."""
    if values.size < 2:
        return np.inf
    m = float(np.max(np.abs(values)))
    if m == 0.0:
        return 0.0
    return float((values / m).std(ddof=1) * m / np.sqrt(values.size))


def next_steps(k: int, h: float, prev: tuple[int, float] | None, target: float,
                kmax: int) -> int:
    """Steps of the next round: at least double.

    When two rounds show the bias decaying geometrically, jump to 1.2 times the step
    count at which it is predicted to meet ``target`` (at most ``8 k``).
    """
    nxt = 2 * k
    if prev is not None and np.isfinite(h) and 0.0 < h < prev[1] and target > 0:
        rate = (h / prev[1]) ** (1.0 / (k - prev[0]))  # bias factor per step
        need = k + np.log(target / h) / np.log(rate)
        nxt = int(np.clip(np.ceil(1.2 * need), 2 * k, 8 * k))
    return min(nxt, kmax)


def singular_message(sens: float, v: float, near: float) -> str:
    """Why a result is flagged: its change when the eigenvalues move by rounding."""
    return (f"f is ill-conditioned on this spectrum: moving the eigenvalues "
            f"by rounding (64 eps of the spectral scale) changes the result {v:.6g} by "
            f"{sens:.3g}; an eigenvalue at {near:.3g} is zero to working precision (the "
            "matrix is singular or nearly so for f)")


def round_message(conv: bool, value: float, se: float, h: float, sens: float,
                  near: float | None, bracket: bool, r: ProbeRound, rtol: float, p: int,
                  estimated: bool) -> str:
    """The message of a spectral sum: the error budget, and what to change if not met."""
    kind = "Gauss-Radau bracket half-width" if bracket else "bias estimate |G_k - G_k/2|"
    head = (f"{'converged' if conv else 'not converged'} at {r.k} steps: {kind} {h:.3g}, "
            f"probe standard error {se:.3g}, against rtol * |value| = {rtol * abs(value):.3g}")
    if conv:
        return head
    parts = [head]
    if near is not None:
        parts.append(singular_message(sens, value, near))
    if not np.isfinite(h) and bracket:
        parts.append(f"f is not finite at the estimated spectral end {r.bounds[0]:.3g}: "
                     + ("pass spectrum_bounds=(lower, upper)" if estimated else
                        "the given lower bound lies outside f's domain"))
    elif h > 0.5 * rtol * abs(value):
        parts.append("more steps are needed (num_steps / max_steps)")
    if p == 1:
        parts.append("a single probe gives no error estimate (stderr = inf)")
    elif 2 * se > 0.5 * rtol * abs(value):
        room = rtol * abs(value) - min(h, 0.5 * rtol * abs(value))
        # with a margin: the spread itself is estimated from p probes
        need = int(np.ceil(1.5 * p * (2 * se / room) ** 2)) if room > 0 else None
        parts.append("more probes are needed (num_probes" +
                     (f"; about {need} for this rtol)" if need else ")"))
    return "; ".join(parts)
