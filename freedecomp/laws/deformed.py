r"""Deformed Marchenko-Pastur law: Gram matrices :math:`B = \Sigma^{1/2} X X^T \Sigma^{1/2}/m`.

A principal ``n x n`` block of an ``N x N`` Gram matrix keeps all ``m`` columns: it is a
sample covariance of the same kind at ratio :math:`c_n = n/m`, not a free compression.
With population law :math:`H = \sum_k w_k \delta_{t_k}` the companion Stieltjes
transform :math:`v = -(1-c)/z + c\, m(z)` solves the Silverstein equation

.. math:: z = -\frac1v + c \sum_k \frac{w_k t_k}{1 + t_k v}.

The law is solved with the Newton homotopy of :func:`freedecomp.models.track_roots`.
:func:`freedecomp.models.fit_population` estimates the population from a sample by
non-negative least squares on this equation (El Karoui 2008); :func:`freedecomp.decompress`
re-solves the law at :math:`c_N = N/m`, assuming the same population for the block and
the full matrix (covariance aligned with the sampled coordinates, e.g. features of
different variances).

References
----------
.. [1] J. W. Silverstein and Z. D. Bai, "On the empirical distribution of eigenvalues of
   a class of large dimensional random matrices", J. Multivariate Anal. 54, 1995.
.. [2] N. El Karoui, "Spectrum estimation for large dimensional covariance matrices
   using random matrix theory", Ann. Statist. 36(6), 2008.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.probes import as_rng
from spectra.results import SpectralDensity
from spectra.validation import check_float, check_int

from ..models import ETA_BOTTOM, ETA_TOP, track_roots
from ..result import measure_from_grid
from .classical import wishart

__all__ = ["DeformedMarchenkoPastur"]


@dataclass(repr=False)
class DeformedMarchenkoPastur:
    r"""Law of :math:`\Sigma^{1/2} X X^T \Sigma^{1/2}/m` at ratio :math:`c = n/m`.

    Parameters
    ----------
    population : array_like
        Population eigenvalues ``t_k`` (positive).
    weights : array_like
        Their weights (normalised to one).
    ratio : float
        :math:`c = n/m`; an atom of mass :math:`1 - 1/c` sits at 0 when :math:`c > 1`.

    Notes
    -----
    Only the physical sheet is available (no closed form). ``decompressed(alpha)``
    is the law of a Gram matrix with ``alpha`` times more rows and the same columns
    (ratio ``alpha c``, same population), the decompression of row-sampled blocks.
    """

    population: Any
    weights: Any
    ratio: float
    name = "deformed-marchenko-pastur"

    def __post_init__(self) -> None:
        self.population = np.atleast_1d(np.asarray(self.population, float))
        self.weights = np.atleast_1d(np.asarray(self.weights, float))
        if self.population.shape != self.weights.shape or np.any(self.population <= 0):
            raise ValueError("population must be positive with one weight per atom")
        if np.any(self.weights < 0) or not self.ratio > 0:
            raise ValueError("weights must be non-negative and ratio positive")
        self.weights = self.weights / self.weights.sum()

    def stieltjes(self, z: Any, sheet: int = 1) -> np.ndarray:
        """Stieltjes transform on the physical sheet at ``z`` in the upper half plane."""
        if sheet != 1:
            raise NotImplementedError("the deformed law has no closed-form second sheet")
        z = np.asarray(z, dtype=complex)
        if np.any(z.imag <= 0):
            raise ValueError("evaluate the deformed law in the upper half plane")
        out = np.empty(z.shape, complex)
        flat = z.ravel()
        for eta in np.unique(flat.imag):
            sel = flat.imag == eta
            out.ravel()[sel] = self._solve(flat.real[sel], float(eta))
        return out

    def _solve(self, x: np.ndarray, eta: float) -> np.ndarray:
        c, t = self.ratio, self.population
        sd = float(np.sqrt(np.sum(self.weights * t**2) * (1 + c)))
        z0 = x + 1j * ETA_TOP * sd
        v, _ = track_roots(np.zeros((1, 1)), x, -1.0 / z0, ETA_TOP * sd, eta, kind=1,
                           t=t, w=self.weights, c=c)
        z = x + 1j * eta
        return (v + (1 - c) / z) / c

    @property
    def support(self) -> tuple[float, float]:
        """Interval containing the continuous part (numerical)."""
        x, rho = self.grid(4001)
        pos = np.flatnonzero(rho > 1e-9 * rho.max())
        return float(x[pos[0]]), float(x[pos[-1]])

    @property
    def atoms(self) -> list[tuple[float, float]]:
        """``[(0, 1 - 1/c)]`` when the ratio exceeds one."""
        return [(0.0, 1.0 - 1.0 / self.ratio)] if self.ratio > 1 else []

    def grid(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """``num`` equispaced points over an interval holding the support, and the density."""
        c, t = self.ratio, self.population
        hi = t.max() * (1 + np.sqrt(c)) ** 2 * 1.02
        lo = 0.0 if c >= 1 else t.min() * (1 - np.sqrt(c)) ** 2 * 0.98
        x = np.linspace(lo, hi, num)
        return x, self.density(x)

    def density(self, x: Any) -> np.ndarray:
        """Density of the continuous part (atoms excluded)."""
        x = np.asarray(x, float)
        sd = float(np.sqrt(np.sum(self.weights * self.population**2)))
        m = self._solve(x, ETA_BOTTOM * sd)
        rho = np.where(np.isfinite(m), np.maximum(m.imag, 0.0), 0.0) / np.pi
        return np.where(np.abs(x) < 1e-6 * sd, 0.0, rho) if self.ratio > 1 else rho

    def to_density(self, num: int = 20001) -> SpectralDensity:
        """Quadrature of the law (nodes and weights summing to one)."""
        return law_density(self, num)

    def decompressed(self, alpha: float) -> DeformedMarchenkoPastur:
        """Same population and columns, ``alpha`` times more rows."""
        alpha = check_float(alpha, "decompression ratio alpha", low=1.0)
        return DeformedMarchenkoPastur(self.population, self.weights, self.ratio * alpha)

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:
        """Sample ``D^{1/2} W D^{1/2}/m`` with a white Wishart ``W``.

        ``m = round(n/c)`` columns; ``D`` is diagonal with the population repeated by weight.
        """
        n = check_int(n, "matrix size n", low=1)
        g = as_rng(rng)
        counts = np.floor(self.weights * n).astype(int)
        counts[np.argmax(self.weights)] += n - counts.sum()
        d = np.sqrt(np.repeat(self.population, counts))
        m = max(1, round(n / self.ratio))
        return (d[:, None] * wishart(n, m, g) * d[None, :]) / m

    def __repr__(self) -> str:
        return (f"DeformedMarchenkoPastur(population={self.population!r}, "
                f"weights={self.weights!r}, ratio={self.ratio!r})")


def law_density(law: Any, num: int) -> SpectralDensity:
    """Quadrature of a law that has ``grid(num)``, ``atoms`` and ``name``.

    The continuous part is renormalised to the mass the atoms leave; nodes and weights sum
    to one.
    """
    x, rho = law.grid(num)
    rho = rho * (1 - sum(m for _, m in law.atoms)) / np.trapezoid(rho, x)
    nodes, weights = measure_from_grid(x, rho, law.atoms)
    return SpectralDensity(x=x, rho=rho, nodes=nodes, weights=weights,
                           bounds=(float(nodes.min()), float(nodes.max())),
                           num_matvecs=0, method=law.name)
