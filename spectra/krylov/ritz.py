r"""Converged Ritz pairs of one stored Lanczos run, with or without reorthogonalisation.

The pilot of deflated SLQ (:func:`spectra.quadrature.slq_measure`) needs the eigenpairs
that its run has converged to working accuracy, and nothing else of its basis. Full
reorthogonalisation would make them easy (the basis is orthonormal) but reads the whole
stored basis twice per step; without it the basis loses orthogonality in the directions
of converged Ritz vectors and those may reappear ("ghosts", several Ritz values at one
eigenvalue). What survives is the Lanczos relation (Paige 1980): in floating point

.. math:: A Q_k = Q_k T_k + \beta_k q_{k+1} e_k^T + F_k, \qquad \|F_k\| = O(\epsilon\|A\|),

whatever the orthogonality of :math:`Q_k`. For the eigenpairs :math:`(\theta_j, s_j)` of
:math:`T_k` with small :math:`r_j = |\beta_k s_{kj}|` the vectors :math:`y_j = Q_k s_j`
therefore satisfy :math:`A Y = Y \Theta + E` with :math:`\|E e_j\| \le r_j + \|F_k\|`,
but :math:`Y` need not have orthonormal columns (a ghost pair spans one direction).
:func:`converged_pairs` does a Rayleigh-Ritz step on :math:`\operatorname{span}(Y)`
without a product: with the Gram matrix :math:`G = Y^T Y` (float64, from the basis'
Gram), :math:`Y^T A Y = G\Theta + Y^T E`, so the symmetric part of :math:`G\Theta`
is the projected matrix up to the residuals. The directions of :math:`G` with
eigenvalue below :data:`RANK_TOL` (a ghost's second copy, numerical dependence) are
dropped; on the others the pencil's eigenpairs :math:`(\lambda, c)` give vectors
:math:`u = Y c` with unit norm (in exact arithmetic) and residual at most
:math:`\sum_j |c_j| r_j` up to rounding, which must pass the same test as a single
pair. With full reorthogonalisation :math:`G = I` to rounding and the step changes
nothing. See :doc:`/theory/slq_kpm`.

References
----------
.. [1] C. C. Paige, "Accuracy and effectiveness of the Lanczos algorithm for the
   symmetric eigenproblem", Linear Algebra Appl. 34 (1980).
.. [2] B. N. Parlett, *The Symmetric Eigenvalue Problem*, SIAM 1998, ch. 13.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import GEMV_CHUNK, from_numpy, rowdots, to_numpy
from ..results import LanczosResult

__all__ = ["RANK_TOL", "converged_pairs", "orthonormalise_rows"]

#: Eigenvalues of the Gram matrix of the converged Ritz vectors below which a direction
#: is dropped (a unit Ritz vector contributes about 1; ghost copies of one eigenvector
#: share about 1 between them). The residual bound then grows by at most ``2x``.
RANK_TOL = 0.25


def converged_pairs(res: LanczosResult, rtol: float, *, like: Any) -> tuple[np.ndarray, Any]:
    """Eigenpairs of ``A`` converged in run ``0`` of ``res`` (which stores its basis).

    Parameters
    ----------
    res : LanczosResult
        A run that kept its basis (``(p, s, n)`` with full reorthogonalisation, the list
        of its blocks with ``keep_basis``); only its first vector's run is used.
    rtol : float
        A pair is kept when its residual bound is at most ``rtol * max |theta|``.
    like : Operator or array
        The framework, dtype and device of the returned vectors.

    Returns
    -------
    theta : ndarray, float64, shape ``(c,)``
        The eigenvalues, ascending.
    U : array ``(c, n)``
        Orthonormal rows (to working precision), the eigenvectors; ``None`` when
        ``c = 0``.
    """
    from scipy.linalg import eigh, eigh_tridiagonal

    s = int(res.steps[0])
    theta, S = eigh_tridiagonal(res.alpha[0, :s], res.beta[0, : s - 1])
    resid = np.abs(res.beta[0, s - 1] * S[-1, :])
    if res.breakdown[0]:
        resid[:] = 0.0  # an invariant Krylov space: every Ritz pair is exact
    tol = rtol * max(float(np.max(np.abs(theta))), np.finfo(float).tiny)
    keep = resid <= tol
    if not keep.any():
        return np.zeros(0), None
    rows = _rows(res.basis, s)
    Sk, th, r = S[:, keep], theta[keep], resid[keep]
    G = _gram(rows, from_numpy(np.ascontiguousarray(Sk.T), like=like))
    G = 0.5 * (G + G.T)
    sig, V = eigh(G)
    big = sig > RANK_TOL
    B = V[:, big] / np.sqrt(sig[big])
    M = B.T @ (0.5 * (G * th[None, :] + th[:, None] * G)) @ B
    lam, W = eigh(0.5 * (M + M.T))
    C = B @ W
    ok = np.abs(C).T @ r <= tol
    if not ok.any():
        return np.zeros(0), None
    U = _combine(rows, from_numpy(np.ascontiguousarray((Sk @ C[:, ok]).T), like=like))
    return lam[ok], orthonormalise_rows(U)


def _rows(basis: Any, s: int) -> list:
    """The first run's ``s`` basis vectors as 1-d arrays (views, no copy).

    ``basis`` is a ``(p, k, n)`` array (full reorthogonalisation) or the list of the
    ``(n, p)`` Lanczos blocks (``lanczos(keep_basis=True)``).
    """
    if isinstance(basis, list):
        return [b[:, 0] for b in basis[:s]]
    return [basis[0, j, :] for j in range(s)]


#: Entries of every row copied into the work piece at a time (a few MB at most).
PIECE = 16 * GEMV_CHUNK


def _pieces(rows: list):
    """``(lo, hi, piece)``: the rows' entries ``lo:hi`` as one ``(s, hi - lo)`` array.

    The pieces are copied into one reused buffer of :data:`PIECE` columns (at most
    ``n / 16``, so that the buffer stays small against the basis).
    """
    n, s = rows[0].shape[0], len(rows)
    size = min(PIECE, max(GEMV_CHUNK, -(-n // 16)))
    numpy = isinstance(rows[0], np.ndarray)
    buf = np.empty((s, size), rows[0].dtype) if numpy else rows[0].new_empty((s, size))
    for lo in range(0, n, size):
        hi = min(n, lo + size)
        for j, x in enumerate(rows):
            buf[j, : hi - lo] = x[lo:hi]
        yield lo, hi, buf[:, : hi - lo]


def _gram(rows: list, coef: Any) -> np.ndarray:
    """``Y Y^T`` for ``Y = coef @ Q^T`` (``coef`` ``(c, s)``) in float64, without ``Y``.

    Per piece: ``Y``'s columns there, then their Gram over whole chunks of
    ``GEMV_CHUNK`` entries (one batched product) added in float64, as
    :func:`~spectra.backend.rowdots`; one read of the basis.
    """
    c = coef.shape[0]
    numpy = isinstance(rows[0], np.ndarray)
    acc = np.zeros((c, c))
    for _, _, P in _pieces(rows):
        Y = coef @ P
        m = Y.shape[1] // GEMV_CHUNK * GEMV_CHUNK
        if m:
            B = Y[:, :m].reshape(c, -1, GEMV_CHUNK)
            B = B.transpose(1, 0, 2) if numpy else B.transpose(0, 1)
            G = B @ (B.transpose(0, 2, 1) if numpy else B.transpose(1, 2))
            acc += to_numpy(G).sum(axis=0)
        if m < Y.shape[1]:
            acc += to_numpy(Y[:, m:] @ Y[:, m:].T)
    return acc


def _combine(rows: list, coef: Any) -> Any:
    """``coef @ Q^T``, ``(c, n)``, for the vectors ``rows`` (``coef`` ``(c, s)``), in one read."""
    n = rows[0].shape[0]
    if isinstance(rows[0], np.ndarray):
        U = np.empty((coef.shape[0], n), dtype=rows[0].dtype)
    else:
        U = rows[0].new_empty((coef.shape[0], n))
    for lo, hi, P in _pieces(rows):
        U[:, lo:hi] = coef @ P
    return U


def orthonormalise_rows(U: Any) -> Any:
    """Rows of ``U`` ``(c, n)`` made orthonormal in place by one Cholesky-QR step.

    For rows already orthonormal up to rounding (the Gram matrix, accumulated in
    float64 by :func:`~spectra.backend.rowdots`, is then the identity to a few
    ``eps``): ``U <- L^{-1} U`` with ``L L^T = U U^T``, row by row from the last (each
    new row combines old rows above it), so no second ``c x n`` array is allocated.
    """
    from scipy.linalg import cholesky, solve_triangular

    c = U.shape[0]
    G = rowdots(U, U.T)
    L = cholesky(0.5 * (G + G.T), lower=True)
    Li = solve_triangular(L, np.eye(c), lower=True)
    torch_rows = not isinstance(U, np.ndarray)
    for i in reversed(range(c)):
        if torch_rows:
            if i:
                U[i:i + 1].addmm_(from_numpy(Li[i:i + 1, :i].copy(), like=U), U[:i],
                                  beta=float(Li[i, i]))
            else:
                U[i].mul_(float(Li[i, i]))
        else:
            U[i] *= Li[i, i]
            if i:
                U[i] += Li[i, :i].astype(U.dtype) @ U[:i]
    return U
