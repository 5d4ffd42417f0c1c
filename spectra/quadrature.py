r"""Stochastic Lanczos quadrature (SLQ): spectral sums :math:`\operatorname{tr} f(A)`.

For a probe ``z`` with ``E[z z^T] = I``, ``k`` Lanczos steps from ``z/||z||`` give a
tridiagonal ``T_k = S \Theta S^T`` and the Gauss quadrature rule

.. math:: z^T f(A) z \approx \|z\|^2 \sum_{j=1}^k \tau_j^2 f(\theta_j),
          \qquad \tau_j = S_{1j},

exact for polynomials of degree ``2k - 1``. Averaging over probes estimates
:math:`\operatorname{tr} f(A)` (Ubaru, Chen & Saad 2017). When ``num_steps``
reaches the dimension the Krylov space is the whole space, and the estimators form
``A`` with ``n`` products and return the exact value instead.

The Gauss rule is biased: for :math:`f(x) = 1/x` it is a lower bound of every
``z^T f(A) z``. :func:`trace_function` and :func:`logdet` therefore report an error bar
that includes the quadrature bias: for functions whose derivatives keep one sign
(``1/x``, ``log``, ``x^p``, ``exp``) the Gauss-Radau bracket of every probe
(:mod:`spectra.gauss`), otherwise the change from ``k/2`` to ``k`` steps; and they add
steps until the bias is small against ``rtol``. See :doc:`/theory/slq_brackets`.

References
----------
.. [1] S. Ubaru, J. Chen, Y. Saad, "Fast estimation of tr(f(A)) via stochastic
   Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.
.. [2] G. H. Golub, G. Meurant, *Matrices, Moments and Quadrature with
   Applications*, Princeton, 2010.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .backend import coldots, eps, rowdots
from .gauss import (
    next_steps,
    probe_round,
    round_message,
    rounding_sensitivity,
    singular_message,
    spectral_interval,
    standard_error,
)
from .krylov import lanczos
from .operators import Operator, as_operator, dense_matrix, require_symmetric
from .probes import as_rng, draw
from .results import Estimate, LanczosResult, warn_not_converged
from .scaling import power_of_two_scale, safe_scale_run, scaled_operator
from .validation import check_bool, check_choice, check_float, check_int

__all__ = [
    "SLQEstimate", "logdet", "power_of_two_scale", "safe_scale_run", "scaled_operator",
    "slq_measure",
    "trace_function",
]

#: Above this many bytes of stored Lanczos basis, ``reorth="auto"`` runs without
#: reorthogonalisation (quadrature stays accurate without it; Greenbaum 1989).
AUTO_REORTH_BYTES = 512 * 2**20


def dense_eigenvalues(op: Operator, block: int = 256) -> np.ndarray:
    """Form ``A`` with ``n`` products (identity blocks) and return its eigenvalues."""
    A = dense_matrix(op, block)
    return np.linalg.eigvalsh(0.5 * (A + A.T))


@dataclass(frozen=True)
class SLQMeasure:
    """Per-probe Gauss quadrature rules of the spectral measure.

    ``nodes[i]`` and ``weights[i]`` hold probe ``i``'s Ritz values and weights
    ``tau^2 ||z_i||^2 / n`` (each row sums to about one); ``exact`` marks the
    dense route taken at full budget. With deflation every row also holds the
    ``deflated`` eigenvalues (weight ``1/n`` each), which ``deflated`` lists once.
    ``lanczos`` is the run behind the rules, one row per rule (with deflation: the
    complement's run, or the pilot's and the others' when nothing was deflated, without
    their bases; ``None`` for the exact route), in units of ``scale``: its tridiagonals
    belong to ``A / scale``.
    """

    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    num_matvecs: int
    exact: bool
    num_steps: int
    deflated: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lanczos: LanczosResult | None = None
    scale: float = 1.0


def _coefficients(res: LanczosResult) -> float:
    return max(float(np.max(np.abs(res.alpha))), float(np.max(np.abs(res.beta))))


def _largest_node(m: SLQMeasure) -> float:
    return max(float(np.max(np.abs(t))) for t in m.nodes)


def _rescaled(m: SLQMeasure, s: float, extra: int) -> SLQMeasure:
    return SLQMeasure([x * s for x in m.nodes], m.weights, m.num_matvecs + extra, m.exact,
                      m.num_steps, m.deflated * s, m.lanczos, m.scale * s)


def slq_measure(
    op: Any,
    *,
    num_probes: int = 10,
    num_steps: int = 40,
    probe: str = "rademacher",
    reorth: str = "auto",
    deflate: bool = False,
    rng: Any = None,
) -> SLQMeasure:
    """Gauss quadrature rules of the spectral measure from random probes.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric.
    num_probes : int
        Probes (all run together as one batched Lanczos).
    num_steps : int
        Lanczos steps per probe. At or above the dimension the exact eigenvalues are
        computed from ``n`` products instead.
    probe : {"rademacher", "gaussian", "sphere"}
    reorth : {"auto", "full", "none"}
        ``"auto"``: full reorthogonalisation while the stored basis fits in
        :data:`AUTO_REORTH_BYTES`, none otherwise.
    deflate : bool
        Deflate the eigenpairs that converge in a pilot run (see :func:`_deflated`):
        the first probe runs alone, without reorthogonalisation but storing its basis;
        its converged Ritz pairs (ghost copies merged, :mod:`spectra.krylov.ritz`) with
        residual below :func:`deflate_tolerance` are exact eigenpairs to working accuracy,
        enter the measure with their exact weight ``1/n`` each, and the other probes
        run on the complement ``(I - U U^T) A (I - U U^T)``. Isolated outliers then
        stop contributing probe noise (their random weights ``(z^T u)^2`` dominate
        the Wasserstein error of spectra with outliers). Valid for any multiplicity:
        a deflated vector is one eigenvector, and other copies of its eigenvalue stay
        in the complement. When nothing converges the pilot is an ordinary probe; when
        something does, its own rule is used for the deflation only (the probes are
        then ``num_probes - 1`` on the complement). Products are counted in full.
    rng : None, int, numpy or torch Generator
        Source of the probes, drawn in the operator's framework, dtype and device (a
        torch operator draws with torch, seeded from ``rng``; see :mod:`spectra.probes`).

    Returns
    -------
    SLQMeasure
        Nodes in the units of ``A``. At an extreme scale of ``A`` the run is repeated on
        ``A`` divided by a power of two (:func:`safe_scale_run`), so the rules of ``c * A``
        are ``c`` times those of ``A`` over the whole floating-point range.

    References
    ----------
    .. [1] L. Lin, "Randomized estimation of spectral densities of large matrices made
       accurate", Numer. Math. 136 (2017).
    .. [2] A. S. Gambhir, A. Stathopoulos, K. Orginos, "Deflation as a method of
       variance reduction for estimating the trace of a matrix inverse", SIAM J. Sci.
       Comput. 39(2), 2017.
    """
    op = as_operator(op)
    require_symmetric(op, "stochastic Lanczos quadrature", rng=None)
    n = op.shape[0]
    p = check_int(num_probes, "num_probes", low=1)
    k = check_int(num_steps, "num_steps", low=1)
    check_choice(reorth, "reorth", ("auto", "full", "none"))
    check_choice(probe, "probe", ("rademacher", "gaussian", "sphere"))
    deflate = check_bool(deflate, "deflate")
    g = as_rng(rng)
    if k >= n:
        lam = dense_eigenvalues(op)
        return SLQMeasure([lam], [np.full(n, 1.0 / n)], n, True, n)
    reorth = resolve_reorth(reorth, op, p, k)
    Z = draw(probe, n, p, like=op, rng=g)
    if deflate and p > 1:
        def run(o: Operator) -> SLQMeasure:
            return _deflated(o, Z, k, reorth)
    else:
        def run(o: Operator) -> SLQMeasure:
            return _rules(lanczos(o, k, v0=Z, reorth=reorth), n)
    m, s, spent = safe_scale_run(op, Z, run, _largest_node)
    return _rescaled(m, s, spent)


def resolve_reorth(reorth: str, op: Operator, p: int, k: int) -> str:
    """Resolve ``reorth="auto"`` for ``p`` probes of ``k`` steps.

    ``"full"`` while the bases fit in :data:`AUTO_REORTH_BYTES`, else ``"none"``.
    """
    if reorth != "auto":
        return reorth
    itemsize = 4 if "32" in str(op.dtype) else 8
    return "full" if p * k * op.shape[0] * itemsize <= AUTO_REORTH_BYTES else "none"


#: Relative residual ``|beta_k s_kj| / max|theta|`` below which a pilot Ritz pair is
#: deflated as an eigenpair (its eigenvalue is then accurate to about the square).
DEFLATE_RTOL = 1e-7
#: In units of the operator dtype's ``eps``, the floor of that tolerance: the Lanczos
#: relation holds to a few ``eps ||A||`` only, so a float32 run cannot reach ``1e-7``.
DEFLATE_EPS = 32


def deflate_tolerance(dtype: Any) -> float:
    """Relative residual of a deflated pair: ``max(DEFLATE_RTOL, DEFLATE_EPS eps)``.

    ``1e-7`` in float64; ``3.8e-6`` in float32 (eigenvalues then accurate to that
    relative to ``max |lambda|`` at worst, to about its square over the gap typically).
    """
    return max(DEFLATE_RTOL, DEFLATE_EPS * eps(dtype))


def _rules(res: Any, n: int, extra: tuple = ()) -> SLQMeasure:
    nodes, weights = [], []
    for i in range(res.alpha.shape[0]):
        theta, tau = res.ritz(i)
        w = tau**2 * res.start_norms[i] ** 2 / n
        if extra:  # the complement's rule carries exactly the complement's mass
            w = w * ((1.0 - float(np.sum(extra[1]))) / float(np.sum(w)))
            theta, w = np.concatenate([extra[0], theta]), np.concatenate([extra[1], w])
        nodes.append(theta)
        weights.append(w)
    return SLQMeasure(nodes, weights, res.num_matvecs, False, int(res.alpha.shape[1]),
                      np.asarray(extra[0]) if extra else np.zeros(0),
                      replace(res, basis=None) if extra else res)


def _deflated(op: Operator, Z: Any, k: int, reorth: str) -> SLQMeasure:
    """SLQ with the eigenpairs of a pilot run deflated (see :func:`slq_measure`).

    The pilot runs without reorthogonalisation, storing its basis (full
    reorthogonalisation would read the whole basis twice per step, and in float32 its
    dropped Gram-Schmidt coefficients spoil the Lanczos relation that the residual test
    relies on); its converged pairs, ghost copies merged, come from
    :func:`~spectra.krylov.ritz.converged_pairs`, and the other probes run on their
    complement (``lanczos(locked=U)``, one projection per product).

    Memory, for ``p`` probes (columns of ``Z``) of ``k`` steps and ``c`` deflated
    eigenpairs: about ``max(k + 4 + p, p + c + (p - 1) + L)`` n-vectors in the
    operator's dtype: first the pilot's basis and Lanczos workspace with the probes,
    then (the pilot's basis freed) the probes, the ``c`` deflated vectors, the other
    ``p - 1`` probes projected and their Lanczos run, ``L = 4 (p - 1)`` without
    reorthogonalisation and ``(k + 4)(p - 1)`` with it
    (:func:`~spectra.krylov.lanczos.lanczos`).
    """
    from .krylov.ritz import converged_pairs

    n = op.shape[0]
    pilot = lanczos(op, k, v0=Z[:, :1], reorth="none", keep_basis=True)
    if int(pilot.steps[0]) == 1:
        return _rules(lanczos(op, k, v0=Z, reorth=reorth), n)
    theta, U = converged_pairs(pilot, deflate_tolerance(op.dtype), like=op)
    c = theta.size
    spent = pilot.num_matvecs
    pilot = replace(pilot, basis=None)  # the pilot's basis is not needed past U
    if c == 0:  # nothing to deflate: the pilot is an ordinary probe
        first = _rules(pilot, n)
        rest = lanczos(op, k, v0=Z[:, 1:], reorth=reorth)
        m = _rules(rest, n)
        both = replace(rest, basis=None, **{f: np.concatenate([getattr(pilot, f),
                                                               getattr(rest, f)])
                                            for f in ("alpha", "beta", "steps", "breakdown",
                                                      "start_norms")})
        return SLQMeasure(first.nodes + m.nodes, first.weights + m.weights,
                          spent + rest.num_matvecs, False, k, lanczos=both)
    # ||(I - U U^T) z||^2 = ||z||^2 - ||U^T z||^2 (orthonormal U): no projected copy
    zz = coldots(Z[:, 1:], Z[:, 1:])
    left = zz - np.sum(rowdots(U, Z[:, 1:]) ** 2, axis=0)
    if c >= n or np.all(left <= DEFLATE_EPS * eps(op.dtype) * zz):
        return SLQMeasure([theta], [np.full(c, 1.0 / n)], spent, False, k, theta)
    rest = lanczos(op, min(k, n - c), v0=Z[:, 1:], reorth=reorth, locked=U)
    m = _rules(rest, n, extra=(theta, np.full(c, 1.0 / n)))
    return SLQMeasure(m.nodes, m.weights, spent + rest.num_matvecs, False, k, theta,
                      m.lanczos)


# ----------------------------------------------------------------------- spectral sums
#: Lanczos steps of the first round of an adaptive run; later rounds double it.
FIRST_STEPS = 16
#: Default cap on the steps of an adaptive run (``max_steps=None``), clipped to ``n``.
DEFAULT_MAX_STEPS = 512
#: Largest dimension at which an adaptive run forms ``A`` with ``n`` products (and
#: answers exactly) once another round would cost more products than that.
DENSE_MAX = 4096
#: Named functions (``f="inverse"``, ...), all with derivatives of constant sign.
NAMED = {"inverse": np.reciprocal, "log": np.log, "sqrt": np.sqrt, "exp": np.exp}
_SIGNED = (np.reciprocal, np.log, np.sqrt, np.exp, np.log1p)


@dataclass(frozen=True, eq=False)
class SLQEstimate(Estimate):
    """A spectral sum with an error bar that includes the quadrature bias.

    ``stderr = probe_stderr + bias``, so ``value +- 2 stderr`` covers the bias bound
    plus two standard errors of the probe mean. ``converged`` means
    ``bias + 2 probe_stderr <= rtol |value|`` (and a result insensitive to rounding of
    the spectrum).

    Attributes
    ----------
    lower, upper : float
        Probe mean of the Gauss-Radau brackets (``bracketed``; otherwise
        ``value -+ bias``). Every probe's ``z^T f(A) z`` lies in its own bracket.
    bias : float
        Bound (bracketed) or estimate (``|G_k - G_{k/2}|``) of the quadrature bias.
    probe_stderr : float
        Spread of the per-probe values over ``sqrt(num_probes)``.
    num_steps : int
        Lanczos steps of the final round (``n`` when exact).
    bracketed : bool
        Whether the bias is the Gauss-Radau bound: rigorous for given spectral bounds,
        and with probability ``1 - 1e-10`` for estimated ones (see ``spectrum_bounds``
        of :func:`trace_function`).
    spectrum_bounds : tuple of float
        The ``(a, b)`` the Radau rules used (given, or estimated from Ritz values).
    sensitivity : float
        Change of ``value`` when every Ritz value moves by rounding (``64 eps`` of the
        spectral scale); large when ``f`` is singular at a numerically zero eigenvalue.
    """

    lower: float = -np.inf
    upper: float = np.inf
    bias: float = 0.0
    probe_stderr: float = np.nan
    num_steps: int = 0
    bracketed: bool = False
    spectrum_bounds: tuple[float, float] = (np.nan, np.nan)
    sensitivity: float = 0.0


def _resolve(f: Any, bracket: Any) -> tuple[Callable, bool, str]:
    if isinstance(f, str):
        check_choice(f, "f", tuple(NAMED))
        f = NAMED[f]
    if not callable(f):
        raise TypeError(f"f must be callable or one of {', '.join(map(repr, NAMED))}, "
                        f"got {type(f).__name__}")
    if bracket is None:
        bracket = any(f is g for g in _SIGNED)
    return f, check_bool(bracket, "bracket"), getattr(f, "__name__", "f")


def _check_bounds(bounds: Any) -> tuple[float | None, float | None]:
    if bounds is None:
        return None, None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"spectrum_bounds must be None or a pair (lower, upper) of real "
                        f"numbers or None, got {bounds!r}")
    lo, hi = (None if v is None else check_float(v, f"spectrum_bounds[{i}]")
              for i, v in enumerate(bounds))
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"spectrum_bounds must satisfy lower < upper, got {bounds!r}")
    return lo, hi


def _schedule(num_steps: Any, max_steps: Any, n: int) -> tuple[int, int, bool]:
    """First and largest step count, and whether the run is adaptive."""
    if num_steps is not None:
        if max_steps is not None:
            raise ValueError("give num_steps (a fixed budget) or max_steps (the cap of an "
                             "adaptive one), not both")
        k = check_int(num_steps, "num_steps", low=1)
        return k, k, False
    kmax = (min(n, DEFAULT_MAX_STEPS) if max_steps is None
            else check_int(max_steps, "max_steps", low=1))
    return min(FIRST_STEPS, kmax), kmax, True


def _exact(op: Operator, f: Callable, positive: bool, rtol: float) -> SLQEstimate:
    lam = dense_eigenvalues(op)
    if positive and lam[0] <= 0:
        raise ValueError(f"logdet needs a positive definite operator; its smallest eigenvalue "
                         f"is {lam[0]:.3g}")
    with np.errstate(all="ignore"):
        vals = np.asarray(f(lam), dtype=float)
    if vals.shape != lam.shape:
        raise ValueError(f"f must map an array of eigenvalues elementwise; got shape "
                         f"{vals.shape} for input shape {lam.shape}")
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"f is not finite at eigenvalue(s) {lam[~np.isfinite(vals)][:3]}; "
                         "check its domain")
    v = float(vals.sum())
    sens, mag = rounding_sensitivity(f, [(lam, np.ones_like(lam))], 1.0)
    msg = "exact: A was formed with n products"
    conv = sens <= 0.1 * rtol * mag
    if not conv:
        msg = "not converged: " + singular_message(sens, v, float(lam[np.argmin(np.abs(lam))]))
        warn_not_converged(msg, stacklevel=6)
    return SLQEstimate(v, 0.0, op.shape[0], "slq", conv, msg, vals, v, v, 0.0, 0.0,
                       op.shape[0], True, (float(lam[0]), float(lam[-1])), sens)


def _spectral_sum(op: Operator, f: Callable, bracket: bool, *, rtol: float, num_probes: int,
                  steps: tuple[int, int, bool], bounds: tuple, probe: str, reorth: str,
                  rng: Any, positive: bool = False) -> SLQEstimate:
    """Adaptive SLQ driver of :func:`trace_function` and :func:`logdet`."""
    n, p = op.shape[0], num_probes
    k, kmax, adaptive = steps

    def dense_cheaper(used: int, k: int) -> bool:
        return k >= n or (adaptive and n <= DENSE_MAX and used + p * k >= n)

    if dense_cheaper(0, k):
        return _exact(op, f, positive, rtol)
    Z = draw(probe, n, p, like=op, rng=as_rng(rng))
    used, prev, ops, s = 0, None, None, 1.0
    while True:
        re = resolve_reorth(reorth, op, p, k)
        if ops is None:  # the first round fixes the working scale
            res, s, used = safe_scale_run(
                op, Z, lambda o, k=k, re=re: lanczos(o, k, v0=Z, reorth=re), _coefficients)
            ops = scaled_operator(op, s)
        else:
            res = lanczos(ops, k, v0=Z, reorth=re)
        used += res.num_matvecs
        a, b, trusted = spectral_interval(res, n, *bounds, op.psd, s, positive)
        r = probe_round(res, f, bracket, (a, b), s, trusted)
        value = float(r.values.mean())
        se = standard_error(r.values)
        h = float(r.half_widths.mean())
        target = max(0.5 * rtol * abs(value), se)
        if h <= target or k >= kmax:
            break
        prev, k = (k, h), next_steps(k, h, prev, target, kmax)
        if dense_cheaper(used, k):
            return _exact(op, f, positive, rtol)
    sens, mag = (x / p for x in rounding_sensitivity(f, r.rules, s))
    singular = not sens <= 0.1 * rtol * mag
    conv = bool(np.isfinite(se) and h + 2.0 * se <= rtol * abs(value) and not singular)
    near = s * min(float(np.min(np.abs(t))) for t, _ in r.rules) if singular else None
    msg = round_message(conv, value, se, h, sens, near, bracket, r, rtol, p, bounds[0] is None)
    if not conv:
        warn_not_converged(msg, stacklevel=5)
    return SLQEstimate(value, se + h, used, "slq", conv, msg, r.values,
                       float(r.lower.mean()), float(r.upper.mean()), h, se, r.k, r.rigorous,
                       r.bounds, sens)


def trace_function(
    op: Any,
    f: Callable[[np.ndarray], np.ndarray] | str,
    *,
    rtol: float = 1e-2,
    num_probes: int = 10,
    num_steps: int | None = None,
    max_steps: int | None = None,
    bracket: bool | None = None,
    spectrum_bounds: tuple[float | None, float | None] | None = None,
    probe: str = "rademacher",
    reorth: str = "none",
    rng: Any = None,
) -> SLQEstimate:
    r"""Estimate :math:`\operatorname{tr} f(A)` by stochastic Lanczos quadrature.

    The error bar includes the quadrature bias (:doc:`/theory/slq_brackets`).
    With ``bracket`` (for ``f`` whose derivative of order ``2k+1`` keeps one sign on
    the spectral interval: ``1/x``, ``log x``, ``x^p`` on a positive interval,
    ``exp``) every probe gets the Gauss-Radau bracket of Golub and Meurant, a rigorous
    bound of its quadrature error given bounds of the spectrum; otherwise the bias is
    estimated by the change from ``k // 2`` to ``k`` steps (free: the leading block of
    the same tridiagonal). Without ``num_steps`` the steps double from
    :data:`FIRST_STEPS` until the bias is below ``rtol / 2`` of the value (or below the
    probe spread, which more steps cannot reduce), up to ``max_steps``.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric.
    f : callable or {"inverse", "log", "sqrt", "exp"}
        Vectorised scalar function, applied to arrays of Ritz values; a name picks a
        numpy function (``"inverse"``: ``1/x``).
    rtol : float
        Requested relative accuracy, in ``(0, 1]``: ``converged`` means
        ``bias + 2 probe_stderr <= rtol |value|``; otherwise a
        :class:`~spectra.ConvergenceWarning` is emitted.
    num_probes : int
        Random probes (the probe spread needs at least two).
    num_steps : int, optional
        A fixed number of Lanczos steps (``num_probes * num_steps + 1`` products). From
        the dimension on, the exact value is computed with ``n`` products.
    max_steps : int, optional
        Cap of the adaptive run (default ``min(n, 512)``). An adaptive run on
        ``n <= 4096`` forms ``A`` instead (``n`` products, exact) as soon as another
        round would cost more.
    bracket : bool, optional
        Whether ``f`` has derivatives of constant sign on the spectral interval (then
        the bias bound is rigorous). Default: ``True`` for ``numpy.reciprocal``,
        ``log``, ``sqrt``, ``exp``, ``log1p`` and the names above, ``False`` otherwise
        (say ``bracket=True`` for ``lambda x: 1 / x``).
    spectrum_bounds : (float or None, float or None), optional
        Known ``lambda_min`` lower bound and ``lambda_max`` upper bound (e.g. the shift
        ``s`` of a PSD matrix plus ``s I``). ``None``: estimated from the extreme Ritz
        values, widened so that they hold with probability ``1 - 1e-10`` for Gaussian
        or spherical probes (Kuczynski & Wozniakowski; a heuristic for Rademacher
        probes), and clipped at 0 for operators declared PSD.
    probe : {"rademacher", "gaussian", "sphere"}
    reorth : {"none", "full", "auto"}
        Default ``"none"``: Gauss quadrature from the plain three-term recurrence is
        accurate although orthogonality is lost (Greenbaum 1989; Knizhnerman 1996).
    rng : None, int, numpy or torch Generator
        Source of the probes, drawn in the operator's framework, dtype and device (a
        torch operator draws with torch, seeded from ``rng``; see :mod:`spectra.probes`).

    Returns
    -------
    SLQEstimate
        ``value``, ``stderr = probe_stderr + bias``, ``lower``/``upper``, ``converged``.

    Examples
    --------
    >>> import numpy as np
    >>> from spectra import trace_function
    >>> from spectra.testing import matrix_from_eigenvalues
    >>> lam = np.linspace(1, 4, 300)
    >>> est = trace_function(matrix_from_eigenvalues(lam, rng=0), np.sqrt, rtol=0.05, rng=0)
    >>> bool(abs(est.value - np.sqrt(lam).sum()) < 2 * est.stderr and est.converged)
    True
    """
    f, bracket, _ = _resolve(f, bracket)
    return _checked_sum(op, f, bracket, rtol, num_probes, num_steps, max_steps,
                        spectrum_bounds, probe, reorth, rng, False)


def _checked_sum(op, f, bracket, rtol, num_probes, num_steps, max_steps, spectrum_bounds,
                 probe, reorth, rng, positive) -> SLQEstimate:
    op = as_operator(op)
    require_symmetric(op, "stochastic Lanczos quadrature", rng=None)
    steps = _schedule(num_steps, max_steps, op.shape[0])
    return _spectral_sum(
        op, f, bracket, rtol=check_float(rtol, "rtol", low=0.0, high=1.0, low_open=True),
        num_probes=check_int(num_probes, "num_probes", low=1), steps=steps,
        bounds=_check_bounds(spectrum_bounds),
        probe=check_choice(probe, "probe", ("rademacher", "gaussian", "sphere")),
        reorth=check_choice(reorth, "reorth", ("none", "full", "auto")), rng=rng,
        positive=positive)


def logdet(
    op: Any,
    *,
    rtol: float = 1e-2,
    num_probes: int = 10,
    num_steps: int | None = None,
    max_steps: int | None = None,
    spectrum_bounds: tuple[float | None, float | None] | None = None,
    probe: str = "rademacher",
    reorth: str = "none",
    rng: Any = None,
) -> SLQEstimate:
    r"""Estimate :math:`\log\det A = \operatorname{tr}\log A` of a positive definite ``A``.

    Parameters are those of :func:`trace_function`; ``log`` is always bracketed
    (its derivatives alternate in sign on ``(0, inf)``).

    Returns
    -------
    SLQEstimate

    Raises
    ------
    ValueError
        If Lanczos finds a Ritz value ``<= 0``: Ritz values lie inside the spectral
        interval, so ``A`` then has an eigenvalue ``<= 0`` and no real log-determinant.
    """
    return _checked_sum(op, np.log, True, rtol, num_probes, num_steps, max_steps,
                        spectrum_bounds, probe, reorth, rng, True)
