r"""A density model in a logarithmic variable for positive spectra spanning decades.

The Chebyshev free-form model (:func:`freedecomp.models.fit_chebyshev`) in the variable
:math:`u = \log x` instead of :math:`x`:

.. math::

    p(u) = \frac{2}{\pi h}\sqrt{1 - t^2}\sum_k c_k U_k(t), \qquad t = \frac{u - c}{h},
    \qquad \rho(x) = p(\log x)/x,

fitted by Jackson-damped Chebyshev moments of the sample's logarithms. It resolves a
spectrum whose mass spreads over several decades, which a model in :math:`x` lumps into
one spike near zero. Its Stieltjes transform is not algebraic, so the flow is solved
directly along the characteristics (:doc:`/theory/free_decompression`): for each
target :math:`z = x + i\delta` Newton's method finds :math:`z_0` with
:math:`z_0 + (1 - \alpha)/m_0(z_0) = z`, homotopy in :math:`\delta` from far above the
axis, where :math:`m_0` is the first-sheet transform (Gauss-Chebyshev quadrature in
``t``) continued through the support by :math:`m_0 + 2\pi i\rho` when :math:`z_0`
crosses it, and :math:`m_\alpha(z) = m_0(z_0)/\alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .models import chebyshev_u_basis

__all__ = ["LogModel", "evaluate_log", "fit_log", "multiscale"]

NODES, LEVELS, NEWTON = 160, 40, 2


@dataclass(frozen=True, eq=False)
class LogModel:
    """Chebyshev-II density in ``t = (log x - center)/half`` (see the module notes)."""

    coef: np.ndarray
    center: float
    half: float
    name: str
    complexity: int
    shift: float
    scale: float
    cache: dict = field(default_factory=dict)

    def _p(self, t: np.ndarray) -> np.ndarray:
        """``p(u)`` at (complex) ``t``, continued with principal square roots."""
        return (2 / (np.pi * self.half)) * np.sqrt(1 - t) * np.sqrt(1 + t) * self._poly(t)

    def density(self, x: np.ndarray) -> np.ndarray:
        """Density of the sample's law at real ``x > 0`` (zero outside the support)."""
        x = np.asarray(x, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (np.log(x) - self.center) / self.half
        inside = (x > 0) & (np.abs(t) < 1)
        out = np.zeros_like(x)
        out[inside] = np.maximum(self._p(t[inside]).real, 0.0) / x[inside]
        return out

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Chebyshev-II nodes in ``x`` and weights times the polynomial."""
        if "nodes" not in self.cache:
            j = np.arange(1, NODES + 1)
            t = np.cos(j * np.pi / (NODES + 1))
            w = np.pi / (NODES + 1) * np.sin(j * np.pi / (NODES + 1)) ** 2
            self.cache["nodes"] = (np.exp(self.center + self.half * t),
                                   self._poly(t) * (2 / np.pi) * w)
        return self.cache["nodes"]

    def _stieltjes(self, z: np.ndarray, sheet2: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``m_0`` and ``dm_0/dz`` at ``z``.

        The first sheet by quadrature, plus ``2 pi i rho`` where ``sheet2`` (its
        derivative by a complex difference).
        """
        s, U = self._nodes()
        inv = 1.0 / (s[None, :] - z[:, None])
        m = inv @ U
        dm = (inv * inv) @ U
        if sheet2.any():
            zz = z[sheet2]
            eps = 1e-7 * np.abs(zz)
            r0, r1 = self._rho(zz), self._rho(zz + eps)
            m[sheet2] += 2j * np.pi * r0
            dm[sheet2] += 2j * np.pi * (r1 - r0) / eps
        return m, dm

    def _rho(self, z: np.ndarray) -> np.ndarray:
        return self._p((np.log(z) - self.center) / self.half) / z

    def _poly(self, t: np.ndarray) -> np.ndarray:
        U_prev, U = np.ones_like(t), 2 * t
        acc = self.coef[0] * U_prev + (self.coef[1] * U if self.coef.size > 1 else 0)
        for ck in self.coef[2:]:
            U_prev, U = U, 2 * t * U - U_prev
            acc = acc + ck * U
        return acc

    def solve(self, alpha: float, x: np.ndarray) -> np.ndarray:
        """``m_alpha(x + i delta)`` along the characteristics (``delta`` tiny), ``alpha > 1``."""
        x = np.asarray(x, float)
        lo, hi = np.exp(self.center - self.half), np.exp(self.center + self.half)
        top = 30.0 * (hi + abs(x).max())
        etas = top * (1e-9 * (hi - lo) / top) ** (np.arange(LEVELS) / (LEVELS - 1))
        z0 = (x + 1j * etas[0]) / alpha
        sheet2 = np.zeros(x.size, bool)
        with np.errstate(all="ignore"):
            for eta in etas:
                z = x + 1j * eta
                for _ in range(NEWTON):
                    m, dm = self._stieltjes(z0, sheet2)
                    step = (z0 + (1 - alpha) / m - z) / (1 - (1 - alpha) * dm / m**2)
                    step = np.where(np.isfinite(step), step, 0.0)
                    cap = 0.5 * np.abs(z0)
                    big = np.abs(step) > cap
                    step[big] *= cap[big] / np.abs(step[big])
                    new = z0 - step
                    crossing = (z0.imag >= 0) & (new.imag < 0)
                    inside = (new.real > lo) & (new.real < hi)
                    sheet2 = np.where(crossing, inside, sheet2) & (new.imag < 0)
                    z0 = new
            return self._stieltjes(z0, sheet2)[0] / alpha


def fit_log(eigs: np.ndarray, K: int) -> LogModel:
    """Fit the log-variable model of order ``K`` to positive eigenvalues ``eigs``."""
    e = np.asarray(eigs, float)
    if e.min() <= 0:
        raise ValueError("the log-variable model needs positive eigenvalues")
    center, half, U = chebyshev_u_basis(np.log(e), K, pad=0.02)
    k = np.arange(K + 1)
    g = ((K - k + 2) * np.cos(np.pi * k / (K + 2))
         + np.sin(np.pi * k / (K + 2)) / np.tan(np.pi / (K + 2))) / (K + 2)
    return LogModel(U.mean(axis=1) * g, center, half, f"log-chebyshev({K})", K,
                    float(e.mean()), float(e.std()))


def multiscale(eigs: np.ndarray, span: float = 100.0) -> bool:
    """A positive spectrum whose largest value is at least ``span`` times its smallest.

    Blocks are narrower than the law they come from (a free compression by ``n/N``
    averages), so the driver offers the log-variable models from one decade on.
    """
    e = np.asarray(eigs, float)
    return bool(e.min() > 0 and e.max() >= span * e.min())


def evaluate_log(model: LogModel, alpha: float, num: int, grid=None):
    """The decompressed density on a geometric grid (or ``grid``), not normalised.

    The grid spans from 1/(100 alpha) of the sample's smallest value to ``alpha`` times
    its largest (the Nystrom limit of the upper edge); at most 600 points.
    """
    from .result import GridEvaluation

    if grid is None:
        lo = np.exp(model.center - model.half) / (100 * alpha)
        hi = np.exp(model.center + model.half) * alpha
        x = np.geomspace(lo, hi, min(num, 600))
    else:
        x = np.asarray(grid, float)
    pos = x > 0
    m = np.zeros(x.size, complex)
    if pos.any():
        m[pos] = model.solve(alpha, x[pos])
    bad = ~np.isfinite(m)
    dens = np.where(bad, 0.0, m.imag) / np.pi
    negative = float(np.trapezoid(np.maximum(-dens, 0.0), x))
    rho = np.maximum(dens, 0.0)
    return GridEvaluation(x=x, rho=rho, atoms=[], mass=float(np.trapezoid(rho, x)),
                          negative=negative, nonfinite=int(bad.sum()))
