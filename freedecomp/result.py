"""The :class:`Decompression` result and the density-on-a-grid helpers behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spectra.probes import as_rng
from spectra.results import SpectralDensity

__all__ = ["Decompression", "measure_from_grid", "support_intervals", "wasserstein1"]


def measure_from_grid(x: np.ndarray, rho: np.ndarray, atoms: list[tuple[float, float]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature ``(nodes, weights)`` of a grid density plus atoms, weights summing to one.

    Each grid cell contributes its trapezoid mass at the cell's mass centre (linear
    density on the cell), so the measure's mean matches the trapezoid rule.
    """
    dx = np.diff(x)
    cell = 0.5 * (rho[:-1] + rho[1:]) * dx
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(cell > 0, (rho[:-1] + 2 * rho[1:]) / (3 * (rho[:-1] + rho[1:])), 0.5)
    nodes = x[:-1] + np.nan_to_num(frac, nan=0.5) * dx
    weights = cell
    if atoms:
        nodes = np.concatenate([nodes, [a for a, _ in atoms]])
        weights = np.concatenate([weights, [m for _, m in atoms]])
    total = weights.sum()
    if not total > 0:
        raise ValueError("the decompressed density has no mass on its grid")
    return nodes, weights / total


def wasserstein1(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray | None = None
                 ) -> float:
    r"""W1 :math:`= \int |F_x - F_y|\,dt` between two weighted point measures.

    Plain NumPy (``scipy.stats`` costs about a second to import, which a fresh process
    would pay on every call to ``decompress``). ``wy=None`` means equal weights.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    wx = np.asarray(wx, float) / np.sum(wx)
    wy = np.full(y.size, 1.0 / y.size) if wy is None else np.asarray(wy, float) / np.sum(wy)
    ox, oy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    xs, ys = x[ox], y[oy]
    t = np.sort(np.concatenate([xs, ys]))
    Fx = np.concatenate([[0.0], np.cumsum(wx[ox])])[np.searchsorted(xs, t[:-1], "right")]
    Fy = np.concatenate([[0.0], np.cumsum(wy[oy])])[np.searchsorted(ys, t[:-1], "right")]
    return float(np.sum(np.abs(Fx - Fy) * np.diff(t)))


def support_intervals(x: np.ndarray, rho: np.ndarray, rel: float = 1e-9
                      ) -> list[tuple[float, float]]:
    r"""Intervals where ``rho`` is positive, edges refined by a square-root law.

    Near a soft edge :math:`\rho^2` is linear in the distance to the edge; the edge is
    extrapolated from the two outermost positive points (clamped to one grid cell).
    """
    pos = rho > rel * max(float(rho.max()), 1e-300)
    if not pos.any():
        return []
    idx = np.flatnonzero(pos)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    h = float(x[1] - x[0]) if x.size > 1 else 0.0
    out = []
    for s, e in zip(starts, ends, strict=True):
        out.append((_edge(x, rho, s, +1, h), _edge(x, rho, e, -1, h)))
    return out


def _edge(x: np.ndarray, rho: np.ndarray, i: int, direction: int, h: float) -> float:
    j = i + direction
    if 0 <= j < x.size and rho[j] > rho[i] > 0:
        r0, r1 = rho[i] ** 2, rho[j] ** 2
        shift = min(r0 / (r1 - r0), 1.0) * h
        return float(x[i] - direction * shift)
    return float(x[i] - direction * 0.5 * h)


@dataclass(frozen=True, eq=False)
class Decompression:
    """Estimated spectral law of the ``size x size`` matrix from an ``n x n`` sample.

    Attributes
    ----------
    x, rho : ndarray
        Grid and density of the absolutely continuous part (non-negative; together with
        ``atoms`` it has unit mass by the trapezoid rule).
    size : int
        Target size ``N``.
    sample_size : int
        Sample size ``n``.
    atoms : list of (float, float)
        Point masses ``(location, mass)``.
    edges : list of (float, float)
        Support intervals of the continuous part.
    edge_errors : list of (float, float)
        Standard-error estimates of each edge.
    bands : ndarray or None
        Shape ``(2, len(x))``: pointwise lower and upper density over several
        submatrices (or sub-samples), when available.
    diagnostics : dict
        ``method`` and ``model`` chosen, ``reason``, validation errors, runner-up,
        residuals, mass before normalisation, and the flags ``decompressible`` and
        ``free_compression`` with human-readable ``warnings``.
    flow : tuple of Decompression
        One result per requested size (this one last) when a sequence was requested.
    """

    x: np.ndarray
    rho: np.ndarray
    size: int
    sample_size: int
    atoms: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    edge_errors: list = field(default_factory=list)
    bands: np.ndarray | None = field(default=None, repr=False)
    diagnostics: dict = field(default_factory=dict, repr=False)
    flow: tuple = field(default=(), repr=False)

    @property
    def alpha(self) -> float:
        """Decompression ratio ``size / sample_size``."""
        return self.size / self.sample_size

    @property
    def density(self) -> SpectralDensity:
        """The result as a :class:`spectra.SpectralDensity` (quadrature summing to one)."""
        nodes, weights = measure_from_grid(self.x, self.rho, self.atoms)
        lo, hi = float(nodes.min()), float(nodes.max())
        return SpectralDensity(
            x=self.x, rho=self.rho, nodes=nodes, weights=weights, bounds=(lo, hi),
            num_matvecs=0, method="freedecomp:" + str(self.diagnostics.get("model", "?")),
        )

    def cdf(self, t: Any) -> np.ndarray:
        """Cumulative distribution function at ``t``, linear inside grid cells."""
        nodes, weights = measure_from_grid(self.x, self.rho, [])
        cont = 1.0 - sum(m for _, m in self.atoms)
        F = np.concatenate([[0.0], np.cumsum(weights)]) * cont
        t = np.asarray(t, dtype=float)
        out = np.interp(t, self.x, F)
        for a, m in self.atoms:
            out = out + m * (t >= a)
        return out

    def quantile(self, q: Any) -> np.ndarray:
        """Quantiles (inverse CDF, linear inside grid cells; atoms are flat steps)."""
        q = np.asarray(q, dtype=float)
        if np.any((q < 0) | (q > 1)):
            raise ValueError("quantile levels must lie in [0, 1]")
        pts = np.sort(np.concatenate([self.x, [a for a, _ in self.atoms],
                                      [a - 1e-12 * (1 + abs(a)) for a, _ in self.atoms]]))
        F = self.cdf(pts)
        F = np.maximum.accumulate(F)
        return np.interp(q, F, pts)

    def eigenvalues(self, count: int | None = None, rng: Any = None) -> np.ndarray:
        """Synthetic eigenvalues of the ``size x size`` matrix.

        ``rng=None`` gives the deterministic midpoint quantiles ``F^{-1}((i+1/2)/count)``;
        with a generator, one uniform draw per stratum (stratified sampling).
        """
        count = self.size if count is None else int(count)
        if count < 1:
            raise ValueError(f"count must be positive, got {count}")
        u = 0.5 * np.ones(count) if rng is None else as_rng(rng).random(count)
        return self.quantile((np.arange(count) + u) / count)

    def moment(self, k: int) -> float:
        """``E[x^k]`` under the estimated law."""
        d = self.density
        return float(np.sum(d.weights * d.nodes**k))

    def trace(self, power: int = 1) -> float:
        """Estimated ``tr(A^power)`` of the full ``size x size`` matrix."""
        return self.size * self.moment(power)

    @property
    def extreme_eigenvalues(self) -> tuple[float, float]:
        """Estimated smallest and largest eigenvalue (support edges and atoms)."""
        pts = [e for ab in self.edges for e in ab] + [a for a, _ in self.atoms]
        return float(min(pts)), float(max(pts))

    @property
    def logdet(self) -> float:
        """Estimated ``log det A`` (requires a support in ``(0, inf)``)."""
        lo, _ = self.extreme_eigenvalues
        if lo <= 0:
            raise ValueError(f"logdet needs a positive spectrum; the estimated minimum is {lo:.3g}")
        d = self.density
        keep = d.weights > 0
        return float(self.size * np.sum(d.weights[keep] * np.log(np.maximum(d.nodes[keep], lo))))
