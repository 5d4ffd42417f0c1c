"""Results of free decompression and the one warning class.

:class:`Decompression` with its typed :class:`Diagnostics` (and the candidates'
:class:`Score`), the :class:`GridEvaluation` of a model, and
:class:`FreeDecompressionWarning`. The helpers :func:`measure_from_grid` and
:func:`support_intervals` turn a density on a grid into a quadrature measure and into
support intervals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any

import numpy as np

from spectra.probes import as_rng
from spectra.results import SpectralDensity
from spectra.validation import check_int

__all__ = [
    "Decompression",
    "Diagnostics",
    "FreeDecompressionWarning",
    "GridEvaluation",
    "Score",
    "measure_from_grid",
    "support_intervals",
]


class FreeDecompressionWarning(UserWarning):
    """The one warning class of :mod:`freedecomp` (a :class:`UserWarning`)."""


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


class _ByKey:
    """Read access by key to a dataclass's fields: ``obj["name"]``, ``obj.get``, ``in``.

    A key is present when its field is not ``None``; an unknown key raises ``KeyError``.
    """

    def __getitem__(self, key: str) -> Any:
        if key not in _field_names(type(self)):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when it is unknown or ``None``."""
        value = getattr(self, key) if key in _field_names(type(self)) else None
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return key in _field_names(type(self)) and getattr(self, str(key)) is not None

    def keys(self) -> list[str]:
        """Names of the fields that are set (not ``None``)."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


@dataclass(frozen=True, eq=False)
class Score(_ByKey):
    """Validation score of one candidate model (``n/2 -> n`` decompression).

    Attributes
    ----------
    family : str
        A family of :data:`freedecomp.candidates.CANDIDATES` or a baseline.
    order : tuple of int
        The candidate's order within its family.
    error : float
        Mean validation error over the sub-samples
        (:func:`freedecomp.evaluation.validation_error` plus penalties; ``inf`` when
        the fit failed).
    screened : bool
        Scored on the first sub-sample only and left out of the selection.
    complexity : int
        Number of free parameters (the simplest model is preferred).
    w1 : float
        The mean of the W1 part alone, in sample standard deviations.
    runs : tuple of float
        The error on each sub-sample it was scored on, in the order of the sub-samples
        (the same for every candidate of one validation: paired differences).
    """

    family: str
    order: tuple
    error: float
    screened: bool
    complexity: int
    w1: float = float("nan")
    runs: tuple = ()


@dataclass(frozen=True, eq=False)
class Diagnostics(_ByKey):
    """How a :class:`Decompression` was obtained and how far to trust it.

    Every field can also be read by key (``diagnostics["model"]``,
    ``diagnostics.get("stability")``); a field that does not apply to the path taken
    is ``None`` and then counts as absent (``"stability" in diagnostics`` is False).

    Attributes
    ----------
    method : str
        The ``method`` requested (``"auto"``, a family, or ``"deformed"``).
    model : str
        Name of the model used (e.g. ``"rational[1/1]"``, ``"deformed-mp(5 population
        atoms)"``).
    reason : str
        Why this model was chosen, in words.
    sample_size : int
        Sample size ``n``.
    alpha : float
        Decompression ratio ``N/n`` of this result.
    family : str or None
        Model family (free path).
    validation_error, runner_up_error : float or None
        Validation error of the chosen model and of the runner-up (in sample sds).
    runner_up : str or None
        Next-best model.
    validation : mapping of str to Score
        Every candidate's :class:`Score` (free path).
    mass_before_normalisation : float
        Mass of the decompressed law on its grid before it is scaled to one.
    negative_mass, residual : float or None
        Mass of the clipped negative density; largest relative root residual (free path).
    nonfinite : int or None
        Grid points where the solver found no finite root (free path).
    stability : float or None
        Disagreement (W1, in sds) of refits on other (sub)samples.
    decompressible : bool
        What it promises: True means every check below passed -- the mass was found on
        the grid (within 2%), no negative density was clipped (under 1%), refits on other
        blocks or sub-blocks agree (stability under 0.05 sd), and the invariants in
        ``checks`` hold, a model of the flow (not a baseline) was chosen, and the block
        does not look like a sparse-graph subset. It does *not* promise accuracy: a
        sample that is not a free compression can pass every check (see
        ``free_compression``). False always comes with a
        :class:`FreeDecompressionWarning`.
    free_compression : bool or None
        Whether the sample behaves like a free compression (real sub-blocks validate as
        well as Haar-rotated ones); False on the deformed path.
    validation_error_haar : float or None
        Validation error on Haar-rotated sub-blocks.
    columns : int or None
        Column count ``m`` of the Gram matrix (deformed path).
    ratio : float or None
        ``N/m`` (deformed path).
    population : tuple of ndarray or None
        Atoms and weights of the fitted population (deformed path).
    nnls_residual, self_consistency_error : float or None
        Relative residual of the population fit; W1 (in sds) between the fitted law at
        ``n`` and the sample (deformed path).
    sampled : str or None
        Which side of a Gram matrix the draws sit on (deformed path).
    checks : mapping of str to Check or None
        The invariant checks (:mod:`freedecomp.invariants`): ``mean``, ``variance``,
        ``negative_mass`` (positive semi-definite samples), ``atom``, ``mass``; each has
        ``figure``, ``limit`` and ``passed``.
    outlier_count : int or None
        Number of outliers kept apart from the bulk (free families).
    zero_fraction : float or None
        Fraction of exact zeros in the sample (a rank-deficient block).
    block_estimates : tuple of dict or None
        Blocks given as operators or densities (:mod:`freedecomp.blocks`): per block its
        ``method`` (dense, slq, density), ``num_matvecs``, ``outliers`` (exact deflated
        eigenvalues), ``quadrature_error`` and ``probe_error`` (W1, absolute) and
        ``relative_error`` (their sum over the block's sd).
    slq_error : float or None
        W1 error of the law carried from SLQ-estimated blocks (the result's units; the
        bands are widened by it: :mod:`freedecomp.blockresults`); None without SLQ blocks.
    warnings : tuple of str
        Human-readable warnings; each is also emitted as a
        :class:`FreeDecompressionWarning` when :func:`~freedecomp.decompress` returns.
    """

    method: str | None = None
    model: str | None = None
    reason: str | None = None
    sample_size: int | None = None
    alpha: float | None = None
    family: str | None = None
    validation_error: float | None = None
    runner_up: str | None = None
    runner_up_error: float | None = None
    validation: Mapping[str, Score] | None = None
    mass_before_normalisation: float | None = None
    negative_mass: float | None = None
    residual: float | None = None
    nonfinite: int | None = None
    stability: float | None = None
    decompressible: bool | None = None
    free_compression: bool | None = None
    validation_error_haar: float | None = None
    columns: int | None = None
    ratio: float | None = None
    population: tuple | None = None
    nnls_residual: float | None = None
    self_consistency_error: float | None = None
    sampled: str | None = None
    checks: Mapping[str, Any] | None = None
    outlier_count: int | None = None
    zero_fraction: float | None = None
    block_estimates: tuple | None = None
    slq_error: float | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class GridEvaluation:
    """A decompressed law evaluated on a grid.

    Attributes
    ----------
    x, rho : ndarray
        Grid and density of the continuous part (non-negative, atoms cut out).
    atoms : list of (float, float)
        Point masses ``(location, mass)``.
    mass : float
        Continuous mass (trapezoid rule) plus the atoms' mass, before normalisation.
    negative : float
        Mass of the negative part clipped from the density.
    residual : float
        Largest relative residual of the root solver.
    nonfinite : int
        Grid points without a finite root (their density is set to zero).
    """

    x: np.ndarray
    rho: np.ndarray
    atoms: list
    mass: float
    negative: float = 0.0
    residual: float = 0.0
    nonfinite: int = 0

    def normalised(self) -> GridEvaluation:
        """The same law with the continuous part scaled so that it and the atoms sum to one.

        Atoms of total mass one or more are scaled down first, keeping a sliver of
        continuous mass rather than dividing by zero.
        """
        amass = sum(w for _, w in self.atoms)
        cont = float(np.trapezoid(self.rho, self.x))
        atoms = list(self.atoms)
        if not cont > 0:  # a discrete measure: the atoms carry everything
            return replace(self, atoms=[(a, w / amass) for a, w in atoms])
        if amass >= 1.0:
            atoms = [(a, w / (amass + 1e-9)) for a, w in atoms]
            amass = sum(w for _, w in atoms)
        return replace(self, rho=self.rho * ((1.0 - amass) / cont), atoms=atoms)

    def measure(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature ``(nodes, weights)`` of the grid density and atoms (weights sum to one)."""
        return measure_from_grid(self.x, self.rho, self.atoms)


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
        Point masses ``(location, mass)``: atoms of the law (an atom at zero for a
        rank-deficient matrix), the outliers (mass ``1/size`` each, also in
        ``outliers``), or every eigenvalue of a discrete baseline.
    edges : list of (float, float)
        Support intervals of the continuous part.
    edge_errors : list of (float, float)
        Standard-error estimates of each edge.
    bands : ndarray or None
        Shape ``(2, len(x))``: pointwise lower and upper density over several
        submatrices (or sub-samples), when available.
    diagnostics : Diagnostics
        ``method`` and ``model`` chosen, ``reason``, validation errors, runner-up,
        residuals, mass before normalisation, and the flags ``decompressible`` and
        ``free_compression`` with human-readable ``warnings`` (also readable by key,
        ``diagnostics["model"]``).
    flow : tuple of Decompression
        One result per requested size (this one last) when a sequence was requested.
    outliers : tuple of Outlier
        Isolated eigenvalues of the full matrix, mapped from the blocks' outliers along
        the characteristic (:class:`freedecomp.outliers.Outlier`: ``location``,
        ``error``, ``block_location``, ``side``).
    """

    x: np.ndarray
    rho: np.ndarray
    size: int
    sample_size: int
    atoms: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    edge_errors: list = field(default_factory=list)
    bands: np.ndarray | None = field(default=None, repr=False)
    diagnostics: Diagnostics = field(default_factory=Diagnostics, repr=False)
    flow: tuple = field(default=(), repr=False)
    outliers: tuple = ()

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
        cont = 1.0 - sum(m for _, m in self.atoms)
        t = np.asarray(t, dtype=float)
        out = np.zeros(t.shape)
        if np.trapezoid(self.rho, self.x) > 0:  # a discrete result has no continuous part
            _, weights = measure_from_grid(self.x, self.rho, [])
            F = np.concatenate([[0.0], np.cumsum(weights)]) * cont
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
        count = self.size if count is None else check_int(count, "count", low=1)
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
