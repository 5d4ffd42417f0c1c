r"""Partial reorthogonalisation for the basis of :func:`spectra.eigsh` (Simon 1984).

:class:`Omega` keeps estimates :math:`\omega_{jk} \approx v_j^T v_k` of the loss of
orthogonality of the Lanczos rows and decides when a new vector must be orthogonalised
against the whole basis: when :math:`\max_k |\omega_{j+1,k}|` exceeds
:math:`\sqrt\epsilon` of the basis dtype, and then once more on the next step.
:func:`gram_restart` is the thick restart of a semi-orthogonal basis: it restores an
orthonormal basis and the projected matrix in it, so the next cycle starts with
:math:`\omega = \epsilon`.  :func:`orthonormal_columns` makes the returned Ritz vectors
orthonormal.  The mathematics: :doc:`/theory/lanczos`, *Partial reorthogonalisation*.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from ..backend import eps, from_numpy, rowdots

#: Reorthogonalisation modes of :func:`spectra.eigsh`.
REORTH = ("auto", "full", "partial")
#: Rounding term of the recurrence, in units of ``eps ||A||_est`` per step (see Omega;
#: the factor is measured: docs/theory/lanczos.rst, *Partial reorthogonalisation*).
ROUND = 4.0


class Omega:
    r"""Simon's recurrence for the orthogonality estimates of a Lanczos basis.

    The basis rows obey :math:`A v_k = \sum_i H_{ik} v_i + \beta_k v_{k+1}` up to a
    rounding term :math:`f_k` (``H`` tridiagonal, or after a thick restart a diagonal
    block bordered by an arrow), so the inner products of the new row
    :math:`v_{j+1} = (A v_j - \sum_{i \le j} H_{ij} v_i) / \beta_j` obey

    .. math:: \beta_j \omega_{j+1,k} = (H \omega_{j,:})_k - (\Omega H_{:,j})_k
       + v_k^T f_j - v_j^T f_k, \qquad k < j,

    with :math:`\Omega` the matrix of estimates (unit diagonal).  The rounding terms are
    replaced by :data:`ROUND` :math:`\epsilon \|A\|_{est}` with the sign that increases
    :math:`|\omega|` (an overestimate), and :math:`\omega_{j+1,j} = \epsilon` (the local
    coefficient is a float64-summed dot product).  The recurrence costs ``O(size^2)``
    host flops per step, nothing of length ``n``.
    """

    def __init__(self, m: int, dtype: Any):
        self.e = eps(dtype)
        self.delta = math.sqrt(self.e)
        #: the estimates omega (symmetric, unit diagonal) of the rows 0..size
        self.est = np.eye(m + 1)
        #: the coefficients a reorthogonalisation removed (column j: along rows < j),
        #: left out of the symmetric ``H`` as in Simon's method but kept for the restart
        self.K = np.zeros((m, m))
        #: orthogonalise the next vector against the whole basis whatever the estimate
        self.force = False
        #: steps that orthogonalised against the whole basis (a diagnostic)
        self.full = 0

    def reset(self, j: int) -> None:
        """Row ``j`` is orthogonal to rows ``0..j-1`` to working accuracy."""
        self.est[j, :j] = self.est[:j, j] = self.e
        self.est[j, j] = 1.0

    def restart(self, size: int) -> None:
        """The whole basis (rows ``0..size``) is orthonormal again (after :func:`gram_restart`)."""
        self.est[: size + 1, : size + 1] = self.e
        np.fill_diagonal(self.est[: size + 1, : size + 1], 1.0)
        self.K[:] = 0.0
        self.force = False

    def predict(self, H: np.ndarray, j: int, b: float, anorm: float) -> np.ndarray:
        """The estimates ``omega_{j+1, 0..j}`` for ``v_{j+1} = w / b`` (``H[j, j]`` set)."""
        Hj, W = H[: j + 1, : j + 1], self.est[: j + 1, : j + 1]
        t = Hj @ W[j] - W @ Hj[:, j]
        row = (t + np.copysign(ROUND * self.e * anorm, t)) / max(b, 1e-300)
        row[j] = self.e
        return row

    def due(self, row: np.ndarray) -> bool:
        """Whether the new vector must be orthogonalised against the whole basis."""
        return self.force or bool(np.max(np.abs(row[:-1]), initial=0.0) > self.delta)

    def accept(self, j: int, row: np.ndarray) -> None:
        """Store the estimates of row ``j + 1`` (no reorthogonalisation at this step)."""
        self.est[j + 1, : j + 1] = self.est[: j + 1, j + 1] = row
        self.est[j + 1, j + 1] = 1.0

    def reorthogonalised(self, j: int) -> None:
        """Row ``j + 1`` was orthogonalised against the basis; the next one will be too."""
        self.full += 1
        self.reset(j + 1)
        self.force = not self.force  # two consecutive steps, then back to the estimate


def gram_restart(B, keep: np.ndarray) -> np.ndarray:
    r"""Thick restart of the semi-orthogonal basis ``B`` on its orthonormalised span.

    With the Gram matrix :math:`G = V V^T = L L^T` of the rows (float64 sums,
    :func:`~spectra.backend.rowdots`), :math:`W = L^{-1} V` is orthonormal and the
    relation :math:`V A = K^T V + \beta e_s v` (``K``: ``H`` plus the coefficients
    removed by reorthogonalisations) gives

    .. math:: W A = M W + \beta r v_\perp, \qquad M = L^{-1} K^T L + \beta r c^T,

    with :math:`r = L^{-1} e_s`, :math:`c = W v^T = L^{-1} V v^T` and :math:`v_\perp =
    v - c^T W`: :math:`M = W A W^T` up to rounding, the projection on the span.  The
    restart keeps the eigenvectors :math:`Z_{\mathrm{keep}}` of its symmetric part,
    :math:`U = Z_{\mathrm{keep}}^T L^{-1} V` (one in-place rotation, as in the full
    path), continues from :math:`v_\perp / \|v_\perp\|` with the arrow
    :math:`\beta \|v_\perp\| Z_{\mathrm{keep}}^T r`; ``keep`` indexes the eigenvalues
    in ascending order, as those of ``H`` (whose eigenvalues equal those of ``M`` to
    ``O(eps ||A||)`` for a semi-orthogonal basis, Simon).  Returns the kept Ritz
    values; sets the rows, ``H`` and the continuation vector (and the diagnostics
    ``B.asym``, ``B.loss``).
    """
    from ._basis import rotate_rows, sqnorm

    s, V = B.size, B.V
    rows = V[: s + 1]
    G = rowdots(rows, rows.T)
    L = np.linalg.cholesky(G[:s, :s])
    c = solve_triangular(L, G[:s, s], lower=True)
    es = np.zeros(s)
    es[-1] = 1.0
    r = solve_triangular(L, es, lower=True)
    K = B.H[:s, :s] + B.omega.K[:s, :s]  # A V^T = V^T K + beta v e_s^T, exactly
    M = solve_triangular(L, K.T @ L, lower=True) + B.beta * np.outer(r, c)
    B.asym = float(np.max(np.abs(M - M.T)))  # rounding of the relation (a diagnostic)
    B.loss = float(np.max(np.abs(G - np.eye(s + 1))))  # measured loss of orthogonality
    theta, Z = np.linalg.eigh(0.5 * (M + M.T))
    Zk = Z[:, keep]
    # v_perp = v - (G^{-1} g)^T V, before the rows are overwritten
    B._gemv(V[s], V[:s], solve_triangular(L, c, lower=True, trans="T"))
    nv = math.sqrt(sqnorm(V[s]))
    C = solve_triangular(L, Zk, lower=True, trans="T").T  # Z_k^T L^{-1}
    rotate_rows(V, from_numpy(np.ascontiguousarray(C), like=B.op), s)
    ell = len(keep)
    V[ell] = V[s]
    V[ell] *= 1.0 / nv
    B.H[:] = 0.0
    B.H[np.arange(ell), np.arange(ell)] = theta[keep]
    B.H[ell, :ell] = B.H[:ell, ell] = B.beta * nv * (Zk.T @ r)
    B.size = ell
    return theta[keep]


def orthonormal_columns(X: Any) -> Any:
    r"""The columns of ``X`` (n x k) orthonormalised in place (Cholesky QR, float64 Gram).

    :math:`X^T X = L L^T`, :math:`X \leftarrow X L^{-T}`, the columns from last to first
    (column ``i`` is a combination of columns ``0..i``: one n-vector of scratch); twice
    when the first pass leaves the Gram matrix more than ``sqrt(eps)`` from identity.
    For nearly orthonormal columns (Ritz vectors of a semi-orthogonal basis) this
    changes them by about their loss of orthogonality.
    """
    k = X.shape[1]
    tiny = math.sqrt(eps(X.dtype))
    for _ in range(2):
        G = rowdots(X.T, X)
        off = float(np.max(np.abs(G - np.eye(k))))
        if off <= eps(X.dtype) * 4:
            break
        T = solve_triangular(np.linalg.cholesky(G), np.eye(k), lower=True).T  # L^{-T}
        for i in range(k - 1, -1, -1):
            col = X[:, : i + 1] @ from_numpy(np.ascontiguousarray(T[: i + 1, i]), like=X)
            X[:, i] = col
        if off <= tiny:
            break
    return X
