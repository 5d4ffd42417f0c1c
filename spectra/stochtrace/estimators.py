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
  predicted variance (see :func:`spectra.stochtrace.hutchpp._hutchpp_sketch`), at most to the
  thirds of [3]_: one block on a flat spectrum, a third of the budget on a decaying one.
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
for Hutch++, XTrace and XNysTrace and Rademacher for Hutchinson and XDiag; since the
improved estimators see only directions, their sphere probes are drawn as unnormalised
Gaussian vectors (the same estimate, two passes per probe fewer).

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

from typing import Any

import numpy as np

from ..results import Estimate, warn_not_converged
from .core import DEFAULT_PROBES as DEFAULT_PROBES
from .core import _exact_diagonal, _hutchinson, _setup
from .exchangeable import _xdiag, _xnystrace, _xtrace
from .hutchpp import _hutchpp

__all__ = ["DEFAULT_PROBES", "DIAGONAL_METHODS", "TRACE_METHODS", "diagonal", "trace"]

TRACE_METHODS = ("hutchinson", "hutchpp", "xtrace", "xnystrace")
DIAGONAL_METHODS = ("hutchinson", "xdiag")

# ---------------------------------------------------------------------------- public


def _norm(x: Any) -> float:
    """Euclidean norm (absolute value for scalars) that neither overflows nor underflows."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    top = float(np.max(x)) if x.size else 0.0
    if x.ndim == 0 or top == 0.0 or not np.isfinite(top):
        return top
    return top * float(np.linalg.norm(x / top))


def _message(method: str, value: Any, stderr: Any, used: int, rtol: Any, ok: bool) -> str:
    err, scale = _norm(stderr), _norm(value)
    what = "norm of the standard errors" if np.ndim(value) else "standard error"
    if not np.isfinite(err):
        return (f"{method}: not converged: the {what} is {err} after {used} products (too few "
                "test vectors to estimate the error); raise num_matvecs")
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
        ``"gaussian"`` gives the same improved estimators (only directions matter), so
        the sphere's test vectors are drawn as the Gaussian vectors they normalise,
        without the normalisation; ``"rademacher"`` gives the original, unnormalised
        estimators, about as accurate on decaying spectra (1.01-1.10x the sphere's
        error for XTrace at 40 products on n = 400) and cheaper to draw at scale
        (random bits instead of normal deviates), but not exact on multiples of the
        identity (1.8x the error on a flat spectrum).
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
        Source of the test vectors, drawn in the operator's framework, dtype and
        device (a torch operator draws with torch, seeded from ``rng``; see
        :mod:`spectra.probes`); the same seed gives the same vectors whatever
        ``block_size``.

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
    >>> est.num_matvecs, bool(abs(est.value - lam.sum()) < 3 * est.stderr < 0.01 * lam.sum())
    (60, True)
    >>> spectra.trace(A, 300, method="hutchinson").stderr  # exact at full budget
    0.0
    """
    ctx, m = _setup(op, num_matvecs, method, TRACE_METHODS, probe, rtol, block_size, rng,
                    "trace")
    if m >= ctx.n:
        value = float(ctx.unscale(np.sum(_exact_diagonal(ctx))))
        return Estimate(value, 0.0, ctx.used, method, True,
                        f"{method}: exact trace from all {ctx.n} unit vectors "
                        f"(num_matvecs >= n = {ctx.n})", np.array([value]))
    run = {"hutchinson": lambda: _hutchinson(ctx, m, rtol, diag=False), "hutchpp": _hutchpp,
           "xtrace": _xtrace, "xnystrace": _xnystrace}[method]
    (value, stderr, samples), _, ok = run() if method == "hutchinson" else run(ctx, m, rtol)
    value, stderr, samples = ctx.unscale(value), ctx.unscale(stderr), ctx.unscale(samples)
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
        Source of the test vectors, drawn in the operator's framework, dtype and
        device (a torch operator draws with torch, seeded from ``rng``; see
        :mod:`spectra.probes`); the same seed gives the same vectors whatever
        ``block_size``.

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
        d = ctx.unscale(_exact_diagonal(ctx))
        return Estimate(d, np.zeros(ctx.n), ctx.used, method, True,
                        f"{method}: exact diagonal from all {ctx.n} unit vectors "
                        f"(num_matvecs >= n = {ctx.n})")
    if method == "hutchinson":
        (value, stderr, _), _, ok = _hutchinson(ctx, m, rtol, diag=True)
    else:
        (value, stderr, _), _, ok = _xdiag(ctx, m, rtol)
    value, stderr = ctx.unscale(value), ctx.unscale(stderr)
    msg = _message(method, value, stderr, ctx.used, rtol, ok)
    if not ok:
        warn_not_converged(msg)
    return Estimate(np.asarray(value, dtype=np.float64), np.asarray(stderr, dtype=np.float64),
                    ctx.used, method, ok, msg)
