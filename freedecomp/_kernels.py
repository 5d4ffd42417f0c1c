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

__all__ = ["homotopy_solve"]


@njit(cache=True, inline="always")
def _residual(kind, C, t, w, c, z, u):  # pragma: no cover - compiled
    if kind == 0:
        nz, nu = C.shape
        f = 0j
        df = 0j
        scale = 0.0
        zi = 1.0 + 0j
        for i in range(nz):
            # Horner in u for row i
            acc = 0j
            dacc = 0j
            mag = 0.0
            au = 1.0
            for j in range(nu - 1, -1, -1):
                dacc = dacc * u + acc
                acc = acc * u + C[i, j]
            for j in range(nu):
                mag += abs(C[i, j]) * au
                au *= abs(u)
            f += zi * acc
            df += zi * dacc
            scale += abs(zi) * mag
            zi *= z
        return f, df, scale
    f = z + 1.0 / u
    df = -1.0 / (u * u)
    scale = abs(z) + 1.0 / abs(u)
    for k in range(t.size):
        den = 1.0 + t[k] * u
        term = c * w[k] * t[k] / den
        f -= term
        df += term * t[k] / den
        scale += abs(term)
    return f, df, scale


@njit(cache=True, parallel=True)
def homotopy_solve(kind, C, t, w, c, x, u0, eta_hi, eta_lo, levels, newton, tol):  # noqa: E501
    """Track the root of ``F(x + i eta, u) = 0`` from ``eta_hi`` down to ``eta_lo``.

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
        level polishes with up to ``4 * newton`` steps).
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
        u = u0[p]
        eta = eta_hi
        for lev in range(levels):
            z = x[p] + 1j * eta
            last = lev == levels - 1
            iters = 4 * newton if last else newton
            step_tol = tol if last else 1e-9
            for _it in range(iters):
                f, df, _s = _residual(kind, C, t, w, c, z, u)
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
        z = x[p] + 1j * eta_lo
        f, _df, s = _residual(kind, C, t, w, c, z, u)
        u_out[p] = u
        res[p] = abs(f) / max(s, 1e-300)
    return u_out, res
