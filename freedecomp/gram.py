r"""Gram matrices ``X X^T / m`` sampled by blocks of rows: the deformed paths.

A principal ``n x n`` block of ``G = X X^T / m`` (``X`` of size ``N x m``) keeps all ``m``
columns, so it is not a free compression of ``G``; which law it follows depends on
where the independent draws sit (:doc:`/theory/free_decompression`, "Gram matrices,
both ways"). :func:`freedecomp.decompress` takes ``columns=m`` and ``sampled=``:

``sampled="columns"`` (default)
    The ``m`` columns are the draws and the rows are coordinates whose population
    (covariance) is aligned with them, e.g. features of different variances: a block
    of rows is a deformed Marchenko-Pastur law at ratio ``n/m`` with the *same*
    population, re-solved at ratio ``N/m``.
``sampled="rows"``
    The ``N`` rows are the draws (data points) and the population sits on the column
    side (a feature covariance :math:`\Sigma`, ``m x m``): activation or feature Gram
    matrices sampled by data points. The non-zero spectrum of ``G`` is that of
    :math:`\Sigma^{1/2} Z^T Z \Sigma^{1/2}/m`, i.e. ``(N/m)`` times a sample covariance
    of ``N`` points: the law of :class:`ColumnGram`. The block is the same with ``n``
    points, so the feature population is fitted at ratio ``m/n`` and re-solved with
    ``N`` points; the atom at zero is ``1 - m/N`` (rank ``m``) when ``m < N``.
``sampled="features"``
    The rows are features of a covariance ``X X^T / m`` (``m`` data points) whose
    population :math:`\Sigma` is a general matrix: a block of ``n`` features has the
    population :math:`\Sigma_{SS}`, itself a principal block -- a free compression --
    of :math:`\Sigma`. The population is fitted at ratio ``n/m``, free-decompressed by
    ``N/n`` (:func:`decompress_population`) and re-solved at ratio ``N/m``
    (:doc:`/theory/free_decompression`, section 4b, "Gram matrices").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.validation import check_choice, check_int

from . import models as _m
from .evaluation import evaluate_law, w1
from .laws import DeformedMarchenkoPastur
from .laws.deformed import law_density
from .result import Decompression, Diagnostics, support_intervals
from .samplers import Sample

__all__ = ["SAMPLED", "ColumnGram", "DeformedFit", "decompress_population"]

SAMPLED = ("columns", "rows", "features")
#: the R-transform model of a compressed population (Marchenko-Pastur-like, 3 moments)
POPULATION_ORDER = (1, 1)


@dataclass(repr=False)
class ColumnGram:
    r"""Law of the ``K x K`` Gram matrix :math:`Z \Sigma Z^T / m` (rows i.i.d., ``Z`` white).

    Parameters
    ----------
    population, weights : array_like
        Eigenvalues of the feature covariance :math:`\Sigma` (``m x m``) and their weights.
    columns : int
        ``m``.
    size : int
        ``K``, the number of rows (data points).

    Notes
    -----
    With :math:`L` the deformed Marchenko-Pastur law of population :math:`\Sigma K/m`
    at ratio ``m/K`` (the ``m x m`` matrix :math:`\Sigma^{1/2}Z^TZ\Sigma^{1/2}/m`), the
    continuous part is ``(m/K)`` times that of :math:`L` and the atom at zero has mass
    ``max(0, 1 - m/K)``.
    """

    population: Any
    weights: Any
    columns: int
    size: int
    name = "column-gram"

    def __post_init__(self) -> None:
        self.inner = DeformedMarchenkoPastur(np.asarray(self.population, float)
                                             * self.size / self.columns, self.weights,
                                             self.columns / self.size)
        self.ratio = self.size / self.columns  # >= 1: an atom at zero (for evaluate_law)

    @property
    def atoms(self) -> list[tuple[float, float]]:
        """``[(0, 1 - m/K)]`` when ``m < K``."""
        return [(0.0, 1.0 - self.columns / self.size)] if self.columns < self.size else []

    def density(self, x: Any) -> np.ndarray:
        """Density of the continuous part."""
        return (self.columns / self.size) * self.inner.density(x)

    def grid(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """``num`` points over an interval holding the support, and the density."""
        x, _ = self.inner.grid(num)
        return x, self.density(x)

    def to_density(self, num: int = 20001):
        """Quadrature of the law (a :class:`spectra.SpectralDensity`)."""
        return law_density(self, num)


def decompress_population(t: np.ndarray, w: np.ndarray, alpha: float, num: int = 120
                          ) -> tuple[np.ndarray, np.ndarray]:
    r"""Free-decompress a population law ``(t, w)`` by ``alpha``.

    The law of :math:`\Sigma` from that of its principal blocks :math:`\Sigma_{SS}`.
    A rational R-transform model (:data:`POPULATION_ORDER`, fitted to the moments of
    ``(t, w)`` through 2000 quantiles) is decompressed along the characteristics and
    returned as positive quadrature atoms and weights.
    """
    from .evaluation import evaluate_model

    if alpha <= 1.0:
        return t, w
    c = np.cumsum(w) / np.sum(w)
    q = t[np.minimum(np.searchsorted(c, (np.arange(2000) + 0.5) / 2000), t.size - 1)]
    model = _m.fit_rational(q, *POPULATION_ORDER)
    nodes, weights = evaluate_model(model, alpha, num=num).normalised().measure()
    keep = (nodes > 0) & (weights > 0)
    if not keep.any():
        raise ValueError("the decompressed population has no positive mass")
    return nodes[keep], weights[keep] / weights[keep].sum()


def _law(sampled: str, t: np.ndarray, w: np.ndarray, m: int, K: int, fitted: int) -> Any:
    """The law at size ``K`` for a population ``(t, w)`` fitted to ``fitted`` rows."""
    if sampled == "rows":
        return ColumnGram(t, w, m, K)
    if sampled == "features":
        t, w = decompress_population(t, w, K / fitted)
    return DeformedMarchenkoPastur(t, w, K / m)


def _fit(sampled: str, eigs: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Population fitted to a block of ``eigs.size`` rows (see the module notes)."""
    n = eigs.size
    e = np.clip(eigs, 0.0, None)
    if sampled in ("columns", "features"):
        return _m.fit_population(e, n / m)
    # rows: the m x m inner matrix has the block's non-zero eigenvalues (times m/n)
    # and m - n zeros when m > n
    inner = np.sort(e)[-min(n, m):] * (m / n)
    if m > n:
        inner = np.concatenate([np.zeros(m - n), inner])
    return _m.fit_population(inner, m / n)  # the sample covariance of n points: Sigma


@dataclass
class DeformedFit:
    """The population fitted to a row-sampled Gram block, and its checks."""

    smp: Sample
    columns: int
    sampled: str
    base: tuple
    subs: list
    diag: dict[str, Any]

    @classmethod
    def create(cls, smp: Sample, columns: int | None, sampled: str, method: str,
               g: np.random.Generator, check: bool) -> DeformedFit:
        """Fit the population at the block's ratio; refit on sub-samples when checking."""
        if columns is None:
            raise ValueError("method='deformed' needs columns= (the column count m of X X^T/m)")
        m = check_int(columns, "columns", low=1, hint=" (the column count m of X X^T/m)")
        sampled = check_choice(sampled, "sampled", SAMPLED)
        if smp.eigs.min() < -1e-8 * abs(smp.eigs).max():
            raise ValueError("a Gram matrix is positive semi-definite; the sample has negative "
                             f"eigenvalues (min {smp.eigs.min():.3g})")
        t, w, resid = _fit(sampled, smp.eigs if sampled == "rows" else smp.pooled, m)
        sd = float(smp.eigs.std())
        reason = ("method='deformed'" if method == "deformed" else
                  "columns given: a Gram matrix sampled by rows is not a free compression, "
                  "so the deformed law is used")
        reason += f" (sampled={sampled!r}: " + {
            "columns": "population on the row side, the same for the block",
            "rows": "rows are the draws, population on the column side",
            "features": "rows are features: the block's population is a compression of "
                        "the full population, free-decompressed before the MP map"}[sampled] + ")"
        at_n = evaluate_law(_law(sampled, t, w, m, smp.n, smp.n), 500).normalised()
        diag: dict[str, Any] = {
            "method": "deformed", "model": f"deformed-mp({t.size} population atoms)",
            "reason": reason, "sample_size": smp.n, "columns": m, "population": (t, w),
            "nnls_residual": resid, "free_compression": False, "sampled": sampled,
            "self_consistency_error": w1(at_n, smp.eigs) / sd}
        subs = []
        if check and smp.matrix is not None:
            for _ in range(3):
                e = smp.subsample(smp.n // 2, g)
                subs.append(_fit(sampled, e, m)[:2])
            diag["validation_error"] = float(np.mean(
                [w1(evaluate_law(_law(sampled, ts, ws, m, smp.n, smp.n // 2),
                                 500).normalised(), smp.eigs) for ts, ws in subs])) / sd
        return cls(smp, m, sampled, (t, w), subs, diag)

    def result(self, N: int, num: int, grid: np.ndarray | None) -> Decompression:
        """The law at ``N`` rows, its stability against the sub-sample refits."""
        smp, m = self.smp, self.columns
        ev = evaluate_law(_law(self.sampled, *self.base, m, N, smp.n), num,
                          grid).normalised()
        d = dict(self.diag, alpha=N / smp.n, ratio=N / m, mass_before_normalisation=ev.mass,
                 warnings=[])
        self_err = d["self_consistency_error"]
        ok = self_err < 0.05
        if self.subs:
            nodes, weights = ev.measure()
            sd_n = float(np.sqrt(np.sum(weights * (nodes - np.sum(weights * nodes)) ** 2)))
            stab = float(np.mean([
                w1(evaluate_law(_law(self.sampled, ts, ws, m, N, smp.n // 2),
                                500).normalised(), nodes, weights)
                for ts, ws in self.subs])) / sd_n
            d["stability"] = stab
            ok = ok and stab < 0.1
        if not ok:
            d["warnings"].append(
                f"ratio N/m={N / m:g} looks past what the sample supports (self-consistency "
                f"{self_err:.3f} sd, stability {d.get('stability', float('nan')):.3f}); "
                "treat the result as unreliable")
        d["decompressible"] = bool(ok)
        edges = support_intervals(ev.x, ev.rho)
        h = float(ev.x[1] - ev.x[0])
        d["warnings"] = tuple(d["warnings"])
        return Decompression(x=ev.x, rho=ev.rho, size=N, sample_size=smp.n, atoms=ev.atoms,
                             edges=edges, edge_errors=[(h, h)] * len(edges),
                             diagnostics=Diagnostics(**d))

    def finish(self, results: list[Decompression]) -> list[Decompression]:
        """No further check on the deformed path."""
        return results
