"""Helpers for testing spectral estimators against dense references.

Matrices with a prescribed spectrum, the tolerance table keyed by dtype
(:data:`spectra.backend.TOLERANCES`), and the distances between spectral measures
(:func:`spectra.distances.wasserstein1` and :func:`~spectra.distances.kolmogorov_smirnov`,
re-exported: the same objects).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import TOLERANCES, tolerance
from .distances import kolmogorov_smirnov, wasserstein1
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
