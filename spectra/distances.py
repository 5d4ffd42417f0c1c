"""Distances between spectral measures: the one Wasserstein-1 and Kolmogorov-Smirnov.

Every package, the application layer, the benchmarks and the tests measure spectra
with these two functions. A measure is given as a :class:`~spectra.SpectralDensity`
(its quadrature nodes and weights), any object with ``nodes`` and ``weights``, or
samples (eigenvalues) with optional weights.

>>> import numpy as np
>>> from spectra.distances import wasserstein1
>>> wasserstein1([0.0, 1.0], [0.5, 1.5])
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_measure", "kolmogorov_smirnov", "wasserstein1"]


def as_measure(obj: Any, weights: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(points, weights)`` of a measure, weights normalised to sum to one.

    Parameters
    ----------
    obj : SpectralDensity, object with ``nodes`` and ``weights``, or array_like
        The measure; samples get equal weights unless ``weights`` is given.
    weights : array_like, optional
        Non-negative weights of the samples.

    Returns
    -------
    points, weights : ndarray
        Float64 arrays of equal length.

    Raises
    ------
    ValueError
        For an empty measure, non-finite points, negative weights or zero total mass.
    """
    if hasattr(obj, "nodes") and hasattr(obj, "weights"):
        x, w = np.asarray(obj.nodes, float).ravel(), np.asarray(obj.weights, float).ravel()
    else:
        x = np.asarray(obj, dtype=float).ravel()
        w = (np.ones(x.size) if weights is None
             else np.asarray(weights, dtype=float).ravel())
    if x.size == 0:
        raise ValueError("an empty measure has no distance")
    if w.shape != x.shape:
        raise ValueError(f"a measure needs one weight per point, got {w.size} weights "
                         f"for {x.size} points")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(w))):
        raise ValueError("a measure's points and weights must be finite (got NaN or Inf)")
    if np.any(w < 0):
        raise ValueError(f"a measure's weights must be non-negative (min {w.min():.3g})")
    total = w.sum()
    if not total > 0:
        raise ValueError("a measure's weights must have a positive sum")
    return x, w / total


def wasserstein1(estimate: Any, reference: Any, weights: Any = None,
                 reference_weights: Any = None) -> float:
    r"""Wasserstein-1 distance :math:`W_1 = \int |F_{est}(t) - F_{ref}(t)|\,dt`.

    Parameters
    ----------
    estimate : SpectralDensity or array_like
        A density (its quadrature nodes and weights) or samples.
    reference : SpectralDensity or array_like
        Reference measure, typically exact eigenvalues (equal weights).
    weights, reference_weights : array_like, optional
        Weights of ``estimate`` / ``reference`` when given as samples.

    Returns
    -------
    float
        In the units of the eigenvalues; divide by the reference's standard deviation
        for a scale-free figure.

    Notes
    -----
    Computed by :func:`scipy.stats.wasserstein_distance` on the weighted point measures
    (imported on first use).
    """
    from scipy.stats import wasserstein_distance

    x, w = as_measure(estimate, weights)
    y, v = as_measure(reference, reference_weights)
    return float(wasserstein_distance(x, y, w, v))


def kolmogorov_smirnov(estimate: Any, reference: Any, weights: Any = None,
                       reference_weights: Any = None) -> float:
    r"""Kolmogorov-Smirnov distance :math:`\sup_t |F_{est}(t) - F_{ref}(t)|`.

    Parameters are those of :func:`wasserstein1`.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    x, w = as_measure(estimate, weights)
    y, v = as_measure(reference, reference_weights)
    t = np.union1d(x, y)
    ox, oy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    Fx = np.concatenate([[0.0], np.cumsum(w[ox])])[np.searchsorted(x[ox], t, side="right")]
    Fy = np.concatenate([[0.0], np.cumsum(v[oy])])[np.searchsorted(y[oy], t, side="right")]
    return float(np.max(np.abs(Fx - Fy)))
