"""Frozen result objects returned by the estimators.

Every result says how many products it cost and, where an algorithm can fail to
meet its target, whether it converged and why not.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ConvergenceWarning",
    "NonFiniteError",
    "EigResult",
    "Estimate",
    "LanczosResult",
    "SpectralDensity",
    "warn_not_converged",
]


class ConvergenceWarning(UserWarning):
    """An iterative method stopped before meeting its tolerance."""


class NonFiniteError(ValueError, FloatingPointError):
    """A product (matvec, model output, gradient) returned NaN or Inf.

    The one error for non-finite values in every package. It subclasses both
    :class:`ValueError` and :class:`FloatingPointError`, so ``except`` clauses written
    for either keep working. The message names the step at which it happened.
    """


def warn_not_converged(message: str, stacklevel: int = 3) -> None:
    """Emit a :class:`ConvergenceWarning`."""
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)


@dataclass(frozen=True, eq=False)
class LanczosResult:
    """Lanczos tridiagonalisation of one or several starting vectors.

    Attributes
    ----------
    alpha : ndarray, shape ``(p, k)``
        Diagonals of the tridiagonal matrices ``T`` (float64), one row per start vector.
    beta : ndarray, shape ``(p, k)``
        ``beta[i, j]`` couples steps ``j`` and ``j + 1``; ``beta[i, steps[i] - 1]`` is
        the norm of the final residual (zero after a breakdown).
    steps : ndarray of int, shape ``(p,)``
        Steps taken by each start vector (fewer than ``k`` after a breakdown).
    basis : array, list or None
        Lanczos vectors, shape ``(p, k, n)``, in the operator's namespace and device
        (``reorth="full"``); with ``reorth="none"`` and ``keep_basis=True`` the list of
        the ``k`` Lanczos blocks ``(n, p)`` themselves (see :func:`spectra.lanczos`).
    num_matvecs : int
        Products used.
    breakdown : ndarray of bool, shape ``(p,)``
        Whether the Krylov space of each start vector became invariant early.
    reorth : str
        ``"full"`` or ``"none"``.
    start_norms : ndarray, shape ``(p,)``
        Norms of the starting vectors (for quadrature of un-normalised probes).
    """

    alpha: np.ndarray
    beta: np.ndarray
    steps: np.ndarray
    basis: Any
    num_matvecs: int
    breakdown: np.ndarray
    reorth: str
    start_norms: np.ndarray

    def tridiagonal(self, i: int = 0) -> np.ndarray:
        """Return the dense ``steps[i] x steps[i]`` tridiagonal matrix of start vector ``i``."""
        s = int(self.steps[i])
        a, b = self.alpha[i, :s], self.beta[i, : s - 1]
        return np.diag(a) + np.diag(b, 1) + np.diag(b, -1)

    def ritz(self, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values and the first components of the Ritz vectors of start vector ``i``.

        Returns
        -------
        theta : ndarray
            Eigenvalues of ``T_i`` (ascending).
        tau : ndarray
            First components of the normalised eigenvectors; ``tau**2`` are the Gauss
            quadrature weights of the spectral measure of the start vector.
        """
        from scipy.linalg import eigh_tridiagonal

        s = int(self.steps[i])
        if s == 1:
            return self.alpha[i, :1].copy(), np.ones(1)
        theta, S = eigh_tridiagonal(self.alpha[i, :s], self.beta[i, : s - 1])
        return theta, S[0, :]


@dataclass(frozen=True, eq=False)
class EigResult:
    """Extremal eigenpairs.

    Attributes
    ----------
    eigenvalues : ndarray, shape ``(k,)``
        Ordered as requested by ``which`` (largest first for ``"LA"``/``"LM"``,
        smallest first for ``"SA"``; ascending for ``"BE"``).
    eigenvectors : array, shape ``(n, k)``
        In the operator's namespace and device.
    residual_norms : ndarray, shape ``(k,)``
        ``||A x - lambda x||`` for each pair (from the Lanczos relation).
    num_matvecs : int
    converged : bool
    message : str
    num_restarts : int
    """

    eigenvalues: np.ndarray
    eigenvectors: Any
    residual_norms: np.ndarray
    num_matvecs: int
    converged: bool
    message: str
    num_restarts: int = 0


@dataclass(frozen=True, eq=False)
class Estimate:
    """A stochastic estimate with its standard error.

    Attributes
    ----------
    value : float or ndarray
        The estimate (an array for diagonals).
    stderr : float or ndarray
        Estimated standard error of ``value``.
    num_matvecs : int
    method : str
    converged : bool
        ``False`` when a requested ``rtol`` was not met within the budget.
    message : str
    samples : ndarray or None
        The per-probe (or leave-one-out) estimates behind ``value``.
    """

    value: Any
    stderr: Any
    num_matvecs: int
    method: str
    converged: bool = True
    message: str = ""
    samples: np.ndarray | None = field(default=None, repr=False)

    def interval(self, z: float = 1.96) -> tuple[Any, Any]:
        """Return the normal confidence interval ``value +- z * stderr``."""
        return self.value - z * self.stderr, self.value + z * self.stderr

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """An estimated spectral density: the raw quadrature measure and a display curve.

    Attributes
    ----------
    x : ndarray
        Grid of the smoothed density.
    rho : ndarray
        Smoothed density on ``x``; integrates to one (trapezoid rule).
    nodes : ndarray
        Quadrature nodes (Ritz values for SLQ).
    weights : ndarray
        Non-negative quadrature weights summing to one. ``(nodes, weights)`` is the
        estimate itself; ``rho`` is for display only.
    bounds : tuple of float
        Estimated spectral interval ``(lambda_min, lambda_max)``.
    num_matvecs : int
    method : str
        ``"slq"``, ``"kpm"`` or the producer's name.
    smoothing : float
        Width (standard deviation) of the Gaussian used for ``rho``; 0 if none.
    stderr : ndarray or None
        Pointwise standard error of ``rho`` across probes, when known.
    deflated : ndarray
        Nodes that are deflated eigenvalues (SLQ with ``deflate=True``): the first
        ``deflated.size`` entries of ``nodes``, each listed once with weight ``1/n``;
        empty otherwise.
    """

    x: np.ndarray
    rho: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    bounds: tuple[float, float]
    num_matvecs: int
    method: str
    smoothing: float = 0.0
    stderr: np.ndarray | None = field(default=None, repr=False)
    deflated: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def cdf(self, t: Any) -> np.ndarray:
        """Cumulative distribution of the quadrature measure at ``t``."""
        order = np.argsort(self.nodes)
        cw = np.concatenate([[0.0], np.cumsum(self.weights[order])])
        idx = np.searchsorted(self.nodes[order], np.asarray(t, dtype=float), side="right")
        return cw[idx]

    def moment(self, k: int) -> float:
        """``k``-th moment ``sum_j w_j x_j^k`` of the quadrature measure."""
        return float(np.sum(self.weights * self.nodes**k))

    def quantile(self, q: Any) -> np.ndarray:
        """Quantiles of the quadrature measure (left-continuous inverse CDF)."""
        order = np.argsort(self.nodes)
        cw = np.cumsum(self.weights[order])
        q = np.asarray(q, dtype=float)
        idx = np.searchsorted(cw, q * cw[-1], side="left")
        return self.nodes[order][np.clip(idx, 0, len(cw) - 1)]
