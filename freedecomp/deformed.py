r"""Deformed Marchenko-Pastur law: Gram matrices :math:`B = \Sigma^{1/2} X X^T \Sigma^{1/2}/m`.

A principal ``n x n`` block of an ``N x N`` Gram matrix keeps all ``m`` columns: it is a
sample covariance of the same kind at ratio :math:`c_n = n/m`, not a free compression.
With population law :math:`H = \sum_k w_k \delta_{t_k}` the companion Stieltjes
transform :math:`v = -(1-c)/z + c\, m(z)` solves the Silverstein equation

.. math:: z = -\frac1v + c \sum_k \frac{w_k t_k}{1 + t_k v}.

The population is estimated from the sample by non-negative least squares on this
equation at points of :math:`\mathbb C^+` (El Karoui 2008) and the law is re-solved at
:math:`c_N = N/m` with the Newton homotopy of :mod:`freedecomp._kernels`. The
population is assumed to be the same for the block and the full matrix (covariance
aligned with the sampled coordinates, e.g. features of different variances).

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

from .models import ETA_BOTTOM, ETA_TOP, track_roots

__all__ = ["DeformedMarchenkoPastur", "decompress_deformed", "fit_population"]


def fit_population(eigs: np.ndarray, ratio: float, num_atoms: int = 150
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Population atoms and weights by NNLS on the Silverstein equation.

    Returns
    -------
    t, w : ndarray
        Atoms (positive) and weights (summing to one) of the estimated population.
    residual : float
        Relative least-squares residual.
    """
    from scipy.optimize import nnls

    e = np.asarray(eigs, float)
    lo, hi = max(float(e.min()), 1e-3 * float(e.max())), float(e.max())
    width = hi - lo
    x = np.linspace(lo - 0.1 * width, hi + 0.1 * width, 80)
    z = np.concatenate([x + 1j * s * width for s in (0.03, 0.1, 0.3, 1.0)])
    mz = np.mean(1.0 / (e[None, :] - z[:, None]), axis=1)
    v = -(1 - ratio) / z + ratio * mz
    t = np.linspace(0.7 * lo, 1.1 * hi, num_atoms)
    lhs = z + 1.0 / v
    A = ratio * t[None, :] / (1.0 + t[None, :] * v[:, None])
    scale = 1.0 / (np.abs(lhs) + 1e-12)
    Ar = np.concatenate([(A * scale[:, None]).real, (A * scale[:, None]).imag,
                         1e3 * np.ones((1, t.size))])
    br = np.concatenate([(lhs * scale).real, (lhs * scale).imag, [1e3]])
    w, rnorm = nnls(Ar, br, maxiter=50 * t.size)
    keep = w > 1e-6 * w.max()
    t, w = t[keep], w[keep] / w[keep].sum()
    return t, w, float(rnorm / np.linalg.norm(br))


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
        x, rho = self._grid(4001)
        pos = np.flatnonzero(rho > 1e-9 * rho.max())
        return float(x[pos[0]]), float(x[pos[-1]])

    @property
    def atoms(self) -> list[tuple[float, float]]:
        """``[(0, 1 - 1/c)]`` when the ratio exceeds one."""
        return [(0.0, 1.0 - 1.0 / self.ratio)] if self.ratio > 1 else []

    def _grid(self, num: int) -> tuple[np.ndarray, np.ndarray]:
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
        from .result import measure_from_grid

        x, rho = self._grid(num)
        rho = rho * (1 - sum(m for _, m in self.atoms)) / np.trapezoid(rho, x)
        nodes, weights = measure_from_grid(x, rho, self.atoms)
        return SpectralDensity(x=x, rho=rho, nodes=nodes, weights=weights,
                               bounds=(float(nodes.min()), float(nodes.max())),
                               num_matvecs=0, method=self.name)

    def decompressed(self, alpha: float) -> DeformedMarchenkoPastur:
        """Same population and columns, ``alpha`` times more rows."""
        if not alpha >= 1:
            raise ValueError(f"alpha must be >= 1, got {alpha}")
        return DeformedMarchenkoPastur(self.population, self.weights, self.ratio * alpha)

    def sample_matrix(self, n: int, rng: Any = None) -> np.ndarray:
        """Sample ``D^{1/2} W D^{1/2}/m`` with a white Wishart ``W``.

        ``m = round(n/c)`` columns; ``D`` is diagonal with the population repeated by weight.
        """
        from .laws import wishart

        g = as_rng(rng)
        counts = np.floor(self.weights * n).astype(int)
        counts[np.argmax(self.weights)] += n - counts.sum()
        d = np.sqrt(np.repeat(self.population, counts))
        m = max(1, round(n / self.ratio))
        return (d[:, None] * wishart(n, m, g) * d[None, :]) / m

    def __repr__(self) -> str:
        return (f"DeformedMarchenkoPastur(population={self.population!r}, "
                f"weights={self.weights!r}, ratio={self.ratio!r})")


def _evaluate(law: DeformedMarchenkoPastur, num: int, grid: Any) -> dict[str, Any]:
    if grid is None:
        xc, rc = law._grid(400)
        pos = np.flatnonzero(rc > 1e-9 * rc.max())
        h = xc[1] - xc[0]
        x = np.linspace(max(xc[pos[0]] - 2 * h, 0.0 if law.ratio >= 1 else -np.inf),
                        xc[pos[-1]] + 2 * h, num)
    else:
        x = np.asarray(grid, float)
    rho = law.density(x)
    amass = sum(m for _, m in law.atoms)
    mass = float(np.trapezoid(rho, x)) + amass
    return {"x": x, "rho": rho * (1 - amass) / max(mass - amass, 1e-300),
            "atoms": law.atoms, "mass": mass}


def _measure(ev: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from .result import measure_from_grid

    return measure_from_grid(ev["x"], ev["rho"], ev["atoms"])


def wasserstein_distance(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray
                         ) -> float:
    """W1 between two weighted point measures."""
    from .result import wasserstein1

    return wasserstein1(x, wx, y, wy)


def decompress_deformed(smp: Any, sizes: list[int], *, columns: int | None, grid: Any,
                        num: int, rng: np.random.Generator, check: bool, reason: str) -> Any:
    """The ``deformed`` path of :func:`freedecomp.decompress`."""
    from .decompress import _w1
    from .result import Decompression, support_intervals

    if columns is None or int(columns) < 1:
        raise ValueError("method='deformed' needs columns= (the column count m of X X^T/m)")
    if smp.eigs.min() < -1e-8 * abs(smp.eigs).max():
        raise ValueError("a Gram matrix is positive semi-definite; the sample has negative "
                         f"eigenvalues (min {smp.eigs.min():.3g})")
    m = int(columns)
    c_n = smp.n / m
    t, w, resid = fit_population(np.clip(smp.pooled, 0.0, None), c_n)
    base = DeformedMarchenkoPastur(t, w, c_n)
    self_err = _w1(_evaluate(base, 500, None), smp.eigs) / float(smp.eigs.std())
    diag: dict[str, Any] = {
        "method": "deformed", "model": f"deformed-mp({t.size} population atoms)",
        "reason": reason, "columns": m, "population": (t, w), "nnls_residual": resid,
        "self_consistency_error": self_err, "free_compression": False}
    subs = []
    if check and smp.matrix is not None:
        for _ in range(3):
            e = smp.subsample(smp.n // 2, rng)
            ts, ws, _ = fit_population(np.clip(e, 0.0, None), e.size / m)
            subs.append((ts, ws))
        diag["validation_error"] = float(np.mean(
            [_w1(_evaluate(DeformedMarchenkoPastur(ts, ws, c_n), 500, None), smp.eigs)
             for ts, ws in subs])) / float(smp.eigs.std())
    results = []
    for N in sizes:
        law = base.decompressed(N / smp.n)
        ev = _evaluate(law, num, grid)
        d = dict(diag, alpha=N / smp.n, ratio=N / m, mass_before_normalisation=ev["mass"],
                 warnings=[])
        ok = self_err < 0.05
        if subs:
            ref = _measure(ev)
            sd_n = float(np.sqrt(np.sum(ref[1] * (ref[0] - np.sum(ref[1] * ref[0])) ** 2)))
            stab = float(np.mean([
                wasserstein_distance(*_measure(_evaluate(DeformedMarchenkoPastur(
                    ts, ws, N / m), 500, None)), *ref) for ts, ws in subs])) / sd_n
            d["stability"] = stab
            ok = ok and stab < 0.1
        if not ok:
            d["warnings"].append(
                f"ratio N/m={N / m:g} looks past what the sample supports (self-consistency "
                f"{self_err:.3f} sd, stability {d.get('stability', float('nan')):.3f}); "
                "treat the result as unreliable")
        d["decompressible"] = ok
        edges = support_intervals(ev["x"], ev["rho"])
        h = float(ev["x"][1] - ev["x"][0])
        results.append(Decompression(x=ev["x"], rho=ev["rho"], size=N, sample_size=smp.n,
                                     atoms=ev["atoms"], edges=edges,
                                     edge_errors=[(h, h)] * len(edges), diagnostics=d))
    last = results[-1]
    return Decompression(**{**last.__dict__, "flow": tuple(results)})
