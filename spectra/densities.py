r"""Spectral densities by stochastic Lanczos quadrature (SLQ) and the kernel polynomial method.

The spectral measure of a symmetric ``n x n`` matrix is
:math:`\mu = \frac1n \sum_i \delta_{\lambda_i}`.

* **SLQ** returns the raw Gauss quadrature nodes and weights of every probe (their
  union is an unbiased estimate of ``mu``), plus a Gaussian-smoothed curve for
  display. Chen, Trogdon & Ubaru (2021) bound its Wasserstein-1 error by
  ``t (lambda_max - lambda_min)`` after about ``12 / t`` steps.
* **KPM** estimates Chebyshev moments :math:`\mu_k = \frac1n \operatorname{tr} T_k(\tilde A)`
  of the rescaled matrix by Hutchinson probes (two moments per product) and sums the
  series with Jackson damping, which keeps the result non-negative up to noise
  (Weisse, Wellein, Alvermann & Fehske 2006). Its spectral interval comes from a
  short Lanczos run.

References
----------
.. [1] T. Chen, T. Trogdon, S. Ubaru, "Analysis of stochastic Lanczos quadrature
   for spectrum approximation", ICML 2021.
.. [2] A. Weisse, G. Wellein, A. Alvermann, H. Fehske, "The kernel polynomial
   method", Rev. Mod. Phys. 78, 2006.
.. [3] L. Lin, Y. Saad, C. Yang, "Approximating spectral densities of large
   matrices", SIAM Review 58(1), 2016.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import power_of_two, to_numpy
from .krylov import lanczos
from .operators import as_operator, require_symmetric
from .probes import as_rng, draw
from .quadrature import dense_eigenvalues, slq_measure
from .results import NonFiniteError, SpectralDensity
from .scaling import safe_scale_run, scaled_operator
from .validation import check_bool, check_choice, check_float, check_int

__all__ = ["auto_smoothing", "check_grid", "density", "jackson_weights", "smooth"]

_DEFAULT_GRID = 1024


def auto_smoothing(nodes: np.ndarray) -> np.ndarray:
    r"""Display widths of the Gaussians placed on one probe's Gauss nodes.

    Node ``j`` of a Gauss rule stands for the mass of its cell, about
    :math:`h_j = (\theta_{j+1} - \theta_{j-1}) / 2` wide. Each node gets
    :math:`\sigma_j = h_j`, wide enough that neighbouring Gaussians merge without
    ripples (the ripple of equal Gaussians ``h`` apart is about
    :math:`2 e^{-2\pi^2\sigma^2/h^2}`, below 1e-8 here) and no wider: the display keeps
    the resolution of the rule. Widths are capped at three times the median width so that an
    isolated outlier is not smeared across the axis, and floored at ``1e-6`` of the span.

    Parameters
    ----------
    nodes : ndarray
        One probe's nodes (any order).

    Returns
    -------
    ndarray
        Positive widths, in the order of ``nodes``.
    """
    x = np.asarray(nodes, dtype=float)
    span = float(x.max() - x.min()) if x.size else 0.0
    scale = span if span > 0 else (abs(float(x[0])) or 1.0) * 1e-3
    if x.size < 2:
        return np.full(x.size, 0.05 * scale if span > 0 else scale)
    order = np.argsort(x)
    xs = x[order]
    gaps = np.diff(xs)
    h = np.empty_like(xs)
    h[1:-1] = 0.5 * (gaps[1:] + gaps[:-1])
    h[0], h[-1] = gaps[0], gaps[-1]
    h = np.clip(h, 1e-6 * scale, 3.0 * np.median(h) + 1e-6 * scale)
    out = np.empty_like(h)
    out[order] = h
    return out


def smooth(nodes: Any, weights: Any, grid: Any, sigma: Any) -> np.ndarray:
    r"""Gaussian smoothing :math:`\sum_j w_j \phi_{\sigma_j}(x - \theta_j)` on a grid (Numba).

    ``sigma`` is one width for all nodes or one per node.
    """
    from ._numba.densities import gaussian_mixture

    nodes = np.ascontiguousarray(nodes, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if nodes.ndim != 1 or weights.shape != nodes.shape:
        raise ValueError(f"nodes and weights must be 1-d arrays of one length, got shapes "
                         f"{nodes.shape} and {weights.shape}")
    x = check_grid(grid)
    if isinstance(x, int):
        raise TypeError("grid must be an array of points here, not a point count")
    try:
        sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), nodes.shape)
    except ValueError:
        raise ValueError(f"sigma must be one width or one per node ({nodes.size}), got shape "
                         f"{np.shape(sigma)}") from None
    if not np.all(sig > 0) or not np.all(np.isfinite(sig)):
        raise ValueError("sigma must be positive and finite")
    return gaussian_mixture(nodes, weights, np.ascontiguousarray(sig), x)


def jackson_weights(num_moments: int) -> np.ndarray:
    r"""Jackson damping factors :math:`g_k`, ``k = 0..N-1``.

    .. math:: g_k = \frac{(N - k + 1)\cos\frac{\pi k}{N+1}
              + \sin\frac{\pi k}{N+1}\cot\frac{\pi}{N+1}}{N + 1}
    """
    N = int(num_moments)
    k = np.arange(N)
    q = np.pi / (N + 1)
    return ((N - k + 1) * np.cos(q * k) + np.sin(q * k) / np.tan(q)) / (N + 1)


_GRID_ALLOWED = ("None, a point count (an integer >= 2) or a finite, strictly increasing "
                 "1-d array of at least 2 points")


def check_grid(grid: Any) -> int | np.ndarray:
    """Validate a density grid: a point count (``None``: 1024) or explicit points.

    Raises
    ------
    TypeError
        For a string, a bool, a float count or anything not convertible to real points.
    ValueError
        For a count below 2, or points that are not 1-d, finite and strictly increasing.
    """
    if grid is None:
        return _DEFAULT_GRID
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, (bool, np.bool_)):
        return check_int(grid, "grid (a point count)", low=2)
    if isinstance(grid, (str, bytes, bool, np.bool_, float, np.floating)):
        raise TypeError(f"grid must be {_GRID_ALLOWED}, got {grid!r}")
    try:
        x = np.asarray(grid, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"grid must be {_GRID_ALLOWED}, got {type(grid).__name__}") from None
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise ValueError(f"grid must be {_GRID_ALLOWED}, got an array of shape {x.shape}")
    return x


def _grid(grid: int | np.ndarray, lo: float, hi: float, pad: float,
          scale: float) -> tuple[np.ndarray, bool]:
    """The grid in units of ``scale``: ``grid`` points over ``[lo - pad, hi + pad]``."""
    if isinstance(grid, int):
        return np.linspace(lo - pad, hi + pad, grid), True
    return grid / scale, False


def _check_smoothing(smoothing: Any) -> Any:
    if isinstance(smoothing, str):
        return check_choice(smoothing, "smoothing", ("auto",))
    return check_float(smoothing, "smoothing (a Gaussian width, or 'auto')", low=0.0,
                       low_open=True)


def _unit(values: np.ndarray) -> float:
    """The power of two at the scale of ``values`` (``1.0`` for all zeros)."""
    return power_of_two(float(np.max(np.abs(values))))


def _rescaled(d: SpectralDensity, s: float) -> SpectralDensity:
    """A density computed for ``A / s``, in the units of ``A``."""
    return SpectralDensity(d.x * s, d.rho / s, d.nodes * s, d.weights,
                           (d.bounds[0] * s, d.bounds[1] * s), d.num_matvecs, d.method,
                           d.smoothing * s, None if d.stderr is None else d.stderr / s,
                           d.deflated * s)


def _finish(x, per_probe_rho, own_grid):
    rho = per_probe_rho.mean(axis=0)
    p = per_probe_rho.shape[0]
    stderr = per_probe_rho.std(axis=0, ddof=1) / np.sqrt(p) if p > 1 else None
    if own_grid:
        mass = np.trapezoid(rho, x)
        if mass > 0:
            rho = rho / mass
            stderr = None if stderr is None else stderr / mass
    return rho, stderr


def density(
    op: Any,
    *,
    method: str = "slq",
    num_probes: int = 10,
    num_steps: int = 80,
    grid: Any = None,
    smoothing: Any = "auto",
    probe: str = "rademacher",
    reorth: str = "auto",
    deflate: bool = True,
    rng: Any = None,
) -> SpectralDensity:
    r"""Estimate the spectral density of a symmetric operator.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric.
    method : {"slq", "kpm"}
        Stochastic Lanczos quadrature, or the kernel polynomial method with Jackson
        damping (``2 * num_steps`` Chebyshev moments).
    num_probes : int
        Random probes.
    num_steps : int
        Products per probe. For SLQ at or above the dimension, the exact eigenvalues
        are returned (``n`` products). At an extreme scale of ``A`` (Lanczos
        coefficients outside ``2^-450 .. 2^450``) the run is repeated on ``A`` divided by
        a power of two (:func:`spectra.scaling.safe_scale_run`, products counted), so
        the result for ``c * A`` is that of ``A`` scaled by ``c`` wherever ``c * A`` has
        normal entries.
    grid : None, int or array
        Evaluation grid of the display curve: ``None`` (1024 points covering the
        spectrum), a point count ``>= 2``, or explicit finite, strictly increasing
        points (not renormalised). Anything else raises ``TypeError``/``ValueError``.
    smoothing : "auto" or float
        SLQ only: standard deviation of the Gaussian display kernel, or ``"auto"``:
        one width per node from its Gauss cell (:func:`auto_smoothing`); the result's
        ``smoothing`` is then the median width. KPM's resolution is set by its moments.
    probe : {"rademacher", "gaussian", "sphere"}
    reorth : {"auto", "full", "none"}
        SLQ reorthogonalisation (see :func:`spectra.quadrature.slq_measure`).
    deflate : bool
        SLQ only: deflate the eigenpairs that converge in a pilot run of the first
        probe, giving each its exact weight ``1/n`` and running the other probes on the
        complement (see :func:`spectra.quadrature.slq_measure`). This removes the probe
        noise of isolated outliers, the dominant error for spectra that have them.
    rng : None, int, numpy or torch Generator
        Source of the probes, drawn in the operator's framework, dtype and device (a
        torch operator draws with torch, seeded from ``rng``; see :mod:`spectra.probes`).

    Returns
    -------
    SpectralDensity
        ``nodes``/``weights``: the quadrature measure (weights sum to one), deflated
        eigenvalues first and once each (``deflated``); ``x``/``rho``: the display
        curve; ``stderr``: its pointwise spread across probes.

    Examples
    --------
    >>> import numpy as np
    >>> from spectra import density
    >>> from spectra.distances import wasserstein1
    >>> from spectra.testing import matrix_from_eigenvalues
    >>> lam = np.linspace(-1, 1, 400)
    >>> den = density(matrix_from_eigenvalues(lam, rng=0), num_probes=4, num_steps=30, rng=0)
    >>> bool(abs(den.weights.sum() - 1) < 1e-12 and wasserstein1(den, lam) < 0.05)
    True
    """
    check_choice(method, "method", ("slq", "kpm"))
    smoothing = _check_smoothing(smoothing)
    g = check_grid(grid)
    deflate = check_bool(deflate, "deflate")
    op = as_operator(op)
    if method == "kpm":
        return _kpm(op, num_probes, num_steps, g, probe, rng)
    m = slq_measure(op, num_probes=num_probes, num_steps=num_steps, probe=probe,
                    reorth=reorth, deflate=deflate, rng=rng)
    s = _unit(np.concatenate(m.nodes))
    # the display is built for A / s (a power of two: exact) and scaled back
    den = _slq_display(m, g, smoothing if smoothing == "auto" else smoothing / s, s)
    return _rescaled(den, s)


def _slq_display(m: Any, g: int | np.ndarray, smoothing: Any, s: float) -> SpectralDensity:
    """Measure (deflated nodes once) and smoothed curve of an SLQ run, in units of ``s``."""
    rows = [t / s for t in m.nodes]
    c = m.deflated.size
    nodes = np.concatenate([m.deflated / s] + [t[c:] for t in rows])
    comp = [np.clip(w[c:], 0.0, None) for w in m.weights]
    n_rows = len(rows)
    weights = np.concatenate([np.clip(m.weights[0][:c], 0.0, None)]
                             + [w / n_rows for w in comp])
    weights /= weights.sum()
    lo, hi = float(nodes.min()), float(nodes.max())
    if smoothing == "auto":
        # Never narrower than two grid steps, so the curve is resolved and integrates to
        # one (deflated eigenvalues can sit next to a complement node).
        floor = 2.0 * (hi - lo) / (g if isinstance(g, int) else g.size)
        sigmas = [np.maximum(auto_smoothing(t), floor) for t in rows]
    else:
        sigmas = [np.full(t.size, float(smoothing)) for t in rows]
    sigma = float(np.median(np.concatenate(sigmas)))
    # Wide enough that no node's Gaussian is cut (widths are capped at 3x the median).
    pad = 5.0 * max(float(np.max(sg)) for sg in sigmas)
    x, own = _grid(g, lo, hi, pad, s)
    per = np.stack([smooth(t, w / w.sum(), x, sg)
                    for t, w, sg in zip(rows, m.weights, sigmas, strict=True)])
    rho, stderr = _finish(x, per, own)
    return SpectralDensity(x, rho, nodes, weights, (lo, hi), m.num_matvecs,
                           "exact" if m.exact else "slq", sigma, stderr, m.deflated / s)


def _kpm_interval(op: Any, v0: Any) -> tuple[float, float, int]:
    """Spectral interval from a short Lanczos run from ``v0``, widened by the Ritz residuals.

    Returns ``(lo, hi, products)``; exact (``n`` products) when ``n <= 30``.
    """
    n = op.shape[0]
    kb = min(n, 30)
    if kb >= n:
        lam = dense_eigenvalues(op)
        return float(lam[0]), float(lam[-1]), n
    res = lanczos(op, kb, v0=v0, reorth="full")
    from scipy.linalg import eigh_tridiagonal

    s = int(res.steps[0])
    th, S = eigh_tridiagonal(res.alpha[0, :s], res.beta[0, : s - 1])
    r = abs(res.beta[0, s - 1] * S[-1, :])
    return float(th[0] - r[0]), float(th[-1] + r[-1]), res.num_matvecs


def _kpm(op, num_probes, num_steps, grid, probe, rng) -> SpectralDensity:
    require_symmetric(op, "kpm density")
    n = op.shape[0]
    p = check_int(num_probes, "num_probes", low=1)
    half = check_int(num_steps, "num_steps", low=1)
    g = as_rng(rng)
    Z = draw(probe, n, p, like=op, rng=g)
    # At an extreme scale of A, work on A / s (s a power of two): norms and the
    # Chebyshev recurrence then neither underflow nor overflow. The interval's start is
    # the first probe (no draw from rng), so a repeated attempt starts where the first did.
    (lo, hi, used), s, spent = safe_scale_run(op, Z, lambda o: _kpm_interval(o, Z[:, :1]),
                                              lambda r: max(abs(r[0]), abs(r[1])))
    den = _kpm_scaled(scaled_operator(op, s), Z, half, grid, (lo, hi, used + spent), s)
    return _rescaled(den, s)


def _kpm_scaled(op, Z, half, grid, interval, s) -> SpectralDensity:
    n, p = Z.shape
    lo, hi, used = interval
    width = max(hi - lo, 1e-12 * max(abs(lo), abs(hi), np.finfo(float).tiny))
    lo, hi = lo - 0.01 * width, hi + 0.01 * width
    c, d = 0.5 * (hi + lo), 0.5 * (hi - lo)

    # Chebyshev moments with the doubling trick: 2 * half moments from half products.
    xp = op.xp
    V0, V1 = Z, (op.matmat(Z) - c * Z) / d
    used += p
    mu = np.zeros((p, 2 * half))
    ab = to_numpy(xp.stack([xp.sum(V0 * V0, axis=0), xp.sum(V1 * V0, axis=0)]))
    if not np.all(np.isfinite(ab)):
        raise NonFiniteError("the operator's product returned NaN or Inf at KPM step 1")
    mu0, mu1 = ab[0], ab[1]
    mu[:, 0], mu[:, 1] = mu0, mu1
    for k in range(1, half):
        V2 = 2.0 * (op.matmat(V1) - c * V1) / d - V0
        used += p
        # one host transfer per step: <v_k, v_k> and <v_{k+1}, v_k>
        sc = to_numpy(xp.stack([xp.sum(V1 * V1, axis=0), xp.sum(V2 * V1, axis=0)]))
        if not np.all(np.isfinite(sc)):
            raise NonFiniteError(f"the operator's product returned NaN or Inf at KPM step "
                                 f"{k + 1}")
        mu[:, 2 * k] = 2 * sc[0] - mu0
        mu[:, 2 * k + 1] = 2 * sc[1] - mu1
        V0, V1 = V1, V2
    mu /= mu0[:, None]  # normalise each probe's measure to unit mass
    coef = jackson_weights(2 * half)[None, :] * mu
    coef[:, 1:] *= 2.0

    from ._numba.densities import chebyshev_series

    x, own = _grid(grid, lo, hi, 0.0, s)
    inside = (x > lo) & (x < hi)
    t = (x[inside] - c) / d
    per = np.zeros((p, x.size))
    for i in range(p):
        per[i, inside] = chebyshev_series(t, coef[i]) / (np.pi * np.sqrt(1 - t * t) * d)
    per = np.clip(per, 0.0, None)
    rho, stderr = _finish(x, per, own)
    # Quadrature measure: Gauss-Chebyshev nodes of the damped series.
    q = 4 * half
    tq = np.cos(np.pi * (np.arange(q) + 0.5) / q)
    wq = np.clip(chebyshev_series(tq, coef.mean(axis=0)), 0.0, None)
    if wq.sum() <= 0:
        raise ValueError("the KPM moments gave no positive mass; increase num_probes")
    return SpectralDensity(x, rho, c + d * tq, wq / wq.sum(), (lo, hi), used, "kpm", 0.0, stderr)
