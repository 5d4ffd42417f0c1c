r"""Numba kernel: the one Newton-homotopy root solver used by every model path.

For each real grid point :math:`x_p` the solver tracks a root :math:`u` of
:math:`F(z, u) = 0` along :math:`z = x_p + i\eta` while :math:`\eta` walks
geometrically from far above the axis (where the physical root is known from the
asymptotics :math:`m \sim -1/z`) down to the axis. Each level runs a few damped Newton
steps started from the previous level's root, so the physical (Herglotz) branch is
followed continuously and never has to be selected among the roots afterwards.

Two residual forms are supported (``kind``):

``0``  bivariate polynomial :math:`F = \sum_{ij} C_{ij} z^i u^j` (algebraic curves,
       rational R-transforms, the Chebyshev free-form model in the Joukowski variable);
``1``  the Silverstein equation :math:`F = z + 1/v - c\sum_k w_k t_k/(1 + t_k v)` of the
       deformed Marchenko-Pastur law (companion Stieltjes transform ``v``).

Numba is imported here only; this module is loaded on first use.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spectra.backend import prefer_threadsafe_layer

prefer_threadsafe_layer()

__all__ = ["homotopy_solve", "homotopy_solve_serial"]


@njit(cache=True, inline="always")
def _residual(kind, C, t, w, c, z, u):  # pragma: no cover - compiled
    """``F(z, u)`` and ``dF/du`` (Horner in ``u``; no magnitude bookkeeping)."""
    if kind == 0:
        nz, nu = C.shape
        f = 0j
        df = 0j
        zi = 1.0 + 0j
        for i in range(nz):
            acc = 0j
            dacc = 0j
            for j in range(nu - 1, -1, -1):
                dacc = dacc * u + acc
                acc = acc * u + C[i, j]
            f += zi * acc
            df += zi * dacc
            zi *= z
        return f, df
    f = z + 1.0 / u
    df = -1.0 / (u * u)
    for k in range(t.size):
        den = 1.0 + t[k] * u
        term = c * w[k] * t[k] / den
        f -= term
        df += term * t[k] / den
    return f, df


@njit(cache=True, inline="always")
def _scale(kind, C, t, w, c, z, u):  # pragma: no cover - compiled
    """Sum of the magnitudes of the terms of ``F`` (for the relative residual)."""
    s = 0.0
    if kind == 0:
        nz, nu = C.shape
        az = 1.0
        for i in range(nz):
            au = 1.0
            for j in range(nu):
                s += abs(C[i, j]) * au * az
                au *= abs(u)
            az *= abs(z)
        return s
    s = abs(z) + 1.0 / abs(u)
    for k in range(t.size):
        s += abs(c * w[k] * t[k] / (1.0 + t[k] * u))
    return s


@njit(cache=True, inline="always")
def _track_point(kind, C, t, w, c, x, u, eta_hi, eta_lo, ratio, levels, newton,
                 tol):  # pragma: no cover - compiled
    """Homotopy for one grid point: returns the root at ``x + i eta_lo`` and its residual."""
    eta = eta_hi
    for lev in range(levels):
        z = x + 1j * eta
        last = lev == levels - 1
        iters = 4 * newton if last else newton
        step_tol = tol if last else 1e-4  # the next level corrects; only the last polishes
        for _it in range(iters):
            f, df = _residual(kind, C, t, w, c, z, u)
            if df == 0 or not np.isfinite(df.real + df.imag):
                break
            step = f / df
            cap = 0.5 * (abs(u) + eta)
            if abs(step) > cap:  # damped step: never jump across sheets
                step *= cap / abs(step)
            u -= step
            if abs(step) <= step_tol * (abs(u) + 1e-300):
                break
        eta *= ratio
    z = x + 1j * eta_lo
    f, _df = _residual(kind, C, t, w, c, z, u)
    s = _scale(kind, C, t, w, c, z, u)
    return u, abs(f) / max(s, 1e-300)


@njit(cache=True, parallel=True)
def homotopy_solve(kind, C, t, w, c, x, u0, eta_hi, eta_lo, levels, newton, tol):  # noqa: E501
    """Track the root of ``F(x + i eta, u) = 0`` from ``eta_hi`` down to ``eta_lo``.

    Parallel over grid points (``prange``); :func:`homotopy_solve_serial` is the same
    computation in one thread, for small grids where starting the worker threads costs
    more than it saves.

    Parameters
    ----------
    kind : int
        Residual form (0 polynomial, 1 Silverstein).
    C : complex ndarray (nz, nu)
        Polynomial coefficients (``kind == 0``).
    t, w : float ndarray
        Population atoms and weights (``kind == 1``).
    c : float
        Aspect ratio (``kind == 1``).
    x : float ndarray
        Real parts of the evaluation points.
    u0 : complex ndarray
        Starting roots at ``x + i eta_hi``.
    eta_hi, eta_lo : float
        Start and end heights.
    levels, newton : int
        Number of geometric levels and Newton steps per intermediate level (the last
        level polishes with up to ``4 * newton`` steps). Intermediate levels stop at a
        relative step of ``1e-4``: each level only has to stay in the basin of the tracked
        root (on every candidate model and law of the test suite the roots agree to
        ``1e-8`` with a ``1e-9`` intermediate tolerance, for 30% fewer Newton steps).
    tol : float
        Relative step tolerance.

    Returns
    -------
    u : complex ndarray
        Roots at ``x + i eta_lo``.
    residual : float ndarray
        ``|F| / sum |terms|`` at the final point.
    """
    n = x.size
    u_out = np.empty(n, dtype=np.complex128)
    res = np.empty(n, dtype=np.float64)
    ratio = (eta_lo / eta_hi) ** (1.0 / max(levels - 1, 1))
    for p in prange(n):
        u_out[p], res[p] = _track_point(kind, C, t, w, c, x[p], u0[p], eta_hi, eta_lo, ratio,
                                        levels, newton, tol)
    return u_out, res


@njit(cache=True)
def homotopy_solve_serial(kind, C, t, w, c, x, u0, eta_hi, eta_lo, levels, newton, tol):  # noqa: E501
    """Single-threaded :func:`homotopy_solve` (same arguments, same results)."""
    n = x.size
    u_out = np.empty(n, dtype=np.complex128)
    res = np.empty(n, dtype=np.float64)
    ratio = (eta_lo / eta_hi) ** (1.0 / max(levels - 1, 1))
    for p in range(n):
        u_out[p], res[p] = _track_point(kind, C, t, w, c, x[p], u0[p], eta_hi, eta_lo, ratio,
                                        levels, newton, tol)
    return u_out, res
