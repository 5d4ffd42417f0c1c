"""Helpers for testing spectral estimators against dense references.

Matrices with a prescribed spectrum, the tolerance table keyed by dtype, and
distances between spectral measures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import TOLERANCES, tolerance
from .probes import as_rng

__all__ = [
    "TOLERANCES",
    "kolmogorov_smirnov",
    "matrix_from_eigenvalues",
    "tolerance",
    "wasserstein1",
]


def matrix_from_eigenvalues(
    eigenvalues: Any, rng: Any = None, dtype: Any = np.float64
) -> np.ndarray:
    r"""Return a dense symmetric matrix ``Q diag(eigenvalues) Q^T`` with Haar ``Q``.

    Parameters
    ----------
    eigenvalues : array_like, shape ``(n,)``
        The prescribed spectrum (real, finite).
    rng : None, int or numpy Generator
        Source of the random orthogonal matrix.
    dtype : numpy dtype
        Output dtype (float32 or float64).

    Returns
    -------
    ndarray, shape ``(n, n)``
        Exactly symmetric.

    Notes
    -----
    ``Q`` is the QR factor of a Gaussian matrix with the signs of ``diag(R)`` folded
    in, which makes it Haar distributed (Mezzadri 2007).

    Examples
    --------
    >>> A = matrix_from_eigenvalues([1.0, 2.0, 3.0], rng=0)
    >>> np.allclose(np.linalg.eigvalsh(A), [1, 2, 3])
    True
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-d array, got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues must be finite")
    g = as_rng(rng)
    n = lam.size
    Q, R = np.linalg.qr(g.standard_normal((n, n)))
    Q *= np.sign(np.diag(R))
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    return A.astype(dtype)


def _as_measure(obj: Any, weights: Any = None) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(obj, "nodes") and hasattr(obj, "weights"):
        x, w = np.asarray(obj.nodes, float), np.asarray(obj.weights, float)
    else:
        x = np.asarray(obj, dtype=float).ravel()
        w = np.full(x.size, 1.0 / max(x.size, 1)) if weights is None else np.asarray(weights, float)
    if x.size == 0:
        raise ValueError("an empty measure has no distance")
    return x, w / w.sum()


def wasserstein1(estimate: Any, reference: Any, weights: Any = None) -> float:
    r"""Wasserstein-1 distance :math:`\int |F_{est} - F_{ref}|\,dx` between spectral measures.

    Parameters
    ----------
    estimate : SpectralDensity or array_like
        A density (its quadrature nodes and weights are used) or samples.
    reference : array_like
        Reference eigenvalues (equal weights).
    weights : array_like, optional
        Weights of ``estimate`` when it is given as samples.

    Returns
    -------
    float
    """
    from scipy.stats import wasserstein_distance

    x, w = _as_measure(estimate, weights)
    y, v = _as_measure(reference)
    return float(wasserstein_distance(x, y, w, v))


def kolmogorov_smirnov(estimate: Any, reference: Any, weights: Any = None) -> float:
    """Kolmogorov-Smirnov distance ``sup |F_est - F_ref|`` between spectral measures."""
    x, w = _as_measure(estimate, weights)
    y, v = _as_measure(reference)
    t = np.union1d(x, y)
    ox, oy = np.argsort(x), np.argsort(y)
    Fx = np.concatenate([[0], np.cumsum(w[ox])])[np.searchsorted(x[ox], t, side="right")]
    Fy = np.concatenate([[0], np.cumsum(v[oy])])[np.searchsorted(y[oy], t, side="right")]
    return float(np.max(np.abs(Fx - Fy)))
