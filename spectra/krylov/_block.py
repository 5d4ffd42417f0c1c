r"""Block basis for :func:`spectra.eigsh` with ``block_size = b > 1``.

Block thick-restart Lanczos (the block Krylov--Schur method) keeps an orthonormal
basis :math:`V_m = [X_1, \dots, X_{m/b}]` of ``m`` vectors, a residual block
:math:`X_+` of ``b`` more, and the relation

.. math:: A V_m = V_m H_m + X_+ R\, E_b^T, \qquad H_m = V_m^T A V_m,

with :math:`E_b` the last ``b`` columns of the identity and :math:`R` upper
triangular (:math:`b \times b`).  A step multiplies the newest block once
(``op.matmat``), removes its components along the whole basis by block classical
Gram--Schmidt applied twice ("twice is enough"), and factors the remainder
:math:`W = X_+ R` by QR.  :math:`H_m` grows by ``b`` rows and columns per step: it is
block tridiagonal (band width ``b``), with a diagonal block of kept Ritz values and an
arrow :math:`R\,Y_{\mathrm{last},\mathrm{keep}}` after a thick restart.  With
:math:`H_m = Y \Theta Y^T` the Ritz pair :math:`(\theta_i, V_m y_i)` has the residual

.. math:: \|A V_m y_i - \theta_i V_m y_i\| = \|R\, y_{i, \mathrm{last}}\|,

where :math:`y_{i, \mathrm{last}}` are the last ``b`` entries of :math:`y_i`.

A block of ``b`` vectors sees up to ``b`` copies of a multiple eigenvalue (Golub &
Underwood 1977): the block Krylov space contains the projection of ``b`` independent
start vectors onto the eigenspace, whereas a single vector only ever sees one
direction in it.  Rank deficiency of :math:`W` (an invariant subspace, or a
dependence inside the block) is handled column by column: a dependent column gets
:math:`R_{ii} = 0` and is replaced by a fresh random direction orthogonal to the
basis, so the block keeps ``b`` orthonormal columns.

References
----------
.. [1] G. H. Golub and R. Underwood, "The block Lanczos method for computing
   eigenvalues", in Mathematical Software III, Academic Press (1977) 361--377.
.. [2] Y. Zhou and Y. Saad, "Block Krylov--Schur method for large symmetric
   eigenvalue problems", Numer. Algorithms 47 (2008) 341--359.
.. [3] C. Musco and C. Musco, "Randomized block Krylov methods for stronger and faster
   approximate singular value decomposition", NeurIPS (2015).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import eps, from_numpy, to_numpy
from ..results import NonFiniteError
from ._basis import DGKS, Basis, random_direction, rotate_rows
from ._scale import product_scale, real_product

#: A column whose norm after projection falls below this fraction of its norm before
#: the QR pivot sends the block through the column-wise (refined) Gram--Schmidt.
_REFINE = 0.01


class BlockBasis:
    """Orthonormal basis rows in the operator's namespace, projected matrix on the host.

    Same interface as the single-vector basis of :mod:`spectra.krylov._basis` (``step``,
    ``ritz``, ``restart``, ``vectors``, ``size``, ``used``, ``anorm``), with ``size``
    advancing by ``b`` per step.
    """

    def __init__(self, op: Any, ncv: int, b: int, g: Any):
        self.op, self.xp, self.g, self.b = op, op.xp, g, b
        self.n, self.m = op.shape[0], ncv
        self.V = self.xp.zeros((ncv + b, self.n), dtype=op.dtype, device=op.device)
        self.H = np.zeros((ncv, ncv))
        self.R = np.zeros((b, b))  # coupling of the residual block
        self.size = 0
        self.anorm = 0.0
        self.used = 0
        self.dim = self.n
        self.inv: float | None = None  # power of two on every product (krylov._scale)
        self.tiny = 10.0 * np.sqrt(self.n) * eps(op.dtype)

    advance = Basis.advance
    release = Basis.release

    # ------------------------------------------------------------------ orthogonalisation
    def _norms(self, W) -> np.ndarray:
        return to_numpy(self.xp.linalg.vector_norm(W, axis=1))

    def _orth(self, W, j: int):
        """Orthonormalise the rows of ``W`` against ``V[:j]`` and among themselves.

        The known couplings (previous block, or the arrow after a restart) and the
        diagonal block are removed first; one block classical Gram--Schmidt pass against
        the whole basis then meets only rounding-level components, and a second pass
        runs when it cancels more than half of some column's norm (DGKS).  Returns
        ``(Q, C, R, bad, deficient)`` with ``W = C^T V[:j] + R^T Q`` up to the discarded
        rounding-level couplings outside the last block (``C[j - b:]`` is exact),
        ``bad`` the first non-finite row (or ``None``) and ``deficient`` whether a row
        was replaced by a random direction.
        """
        xp, b = self.xp, self.b
        w_in = self._norms(W)
        if not np.all(np.isfinite(w_in)):
            return None, None, None, int(np.flatnonzero(~np.isfinite(w_in))[0]), False
        C = np.zeros((j, b))
        if j:
            W = self._local(W, j, C)
            before = self._norms(W) ** 2
            for _ in range(2):  # block CGS, refined while it cancels (DGKS)
                c = self.V[:j] @ W.T
                W = W - c.T @ self.V[:j]
                ch = to_numpy(c)
                C[j - b :] += ch[j - b :]
                after = before - np.sum(ch**2, axis=0)
                if np.all(after >= DGKS**2 * before):
                    break
                before = np.maximum(after, 0.0)
        scale = max(self.anorm, float(np.max(w_in)), 1e-300)
        Q, R = xp.linalg.qr(W.T)
        Rh = to_numpy(R)
        d = np.abs(np.diag(Rh))
        cols = np.linalg.norm(Rh, axis=0)  # row norms of W
        if np.min(d) > _REFINE * np.max(cols) and np.min(d) > self.tiny * scale:
            return Q.T, C, Rh, None, False
        return self._orth_columns(W, j, C, scale)

    def _local(self, W, j: int, C: np.ndarray):
        """Remove the known couplings ``H[:s, s:j]`` and the diagonal block ``V[s:j]``."""
        s = j - self.b
        K = self.H[:s, s:j]
        nz = np.flatnonzero(np.any(K != 0.0, axis=1))
        if nz.size:
            lo = int(nz[0])
            W = W - from_numpy(np.ascontiguousarray(K[lo:].T), like=self.op) @ self.V[lo:s]
        X = self.V[s:j]
        D = X @ W.T
        C[s:] += to_numpy(D)
        return W - D.T @ X

    def _orth_columns(self, W, j: int, C: np.ndarray, scale: float):
        """Column-wise Gram--Schmidt, twice per column, with random replacements."""
        xp, b = self.xp, self.b
        Vj = self.V[:j]
        Q = xp.zeros((b, self.n), dtype=self.op.dtype, device=self.op.device)
        R = np.zeros((b, b))
        deficient = False
        for i in range(b):
            w = W[i]
            for _ in range(2):
                c = Vj @ w
                r = Q[:i] @ w
                w = w - Vj.T @ c - Q[:i].T @ r
                C[:, i] += to_numpy(c)
                R[:i, i] += to_numpy(r)
            nrm = float(to_numpy(xp.linalg.vector_norm(w)))
            if nrm > self.tiny * scale:
                Q[i] = w / nrm
                R[i, i] = nrm
            else:
                Q[i] = random_direction(self.op, self.g, Vj, Q[:i])
                deficient = True
        return Q, C, R, None, deficient

    # ------------------------------------------------------------------ steps
    def set_start(self, X) -> None:
        """Orthonormalise the start block ``X`` of shape ``(n, b)`` into ``V[:b]``."""
        Q, _, _, bad, _ = self._orth(X.T, 0)
        if bad is not None:
            raise ValueError("v0 contains NaN or Inf")  # pragma: no cover
        self.V[: self.b] = Q

    def step(self) -> bool:
        """One block Lanczos step at row ``size``; return whether a column was replaced."""
        j, b = self.size, self.b
        W = real_product(self.op.matmat(self.V[j : j + b].T),
                         f"eigsh products {self.used + 1}-{self.used + b} (block step)")
        self.used += b
        if self.inv is None:
            self.inv = product_scale(W, self.xp, f"eigsh product {self.used - b + 1} "
                                     f"(block Lanczos step 1)")
        if self.inv != 1.0:
            W = W * self.inv
        Q, C, R, bad, deficient = self._orth(W.T, j + b)
        if bad is not None:
            raise NonFiniteError(
                f"the operator's product returned NaN or Inf at eigsh product "
                f"{self.used - b + bad + 1} (column {bad + 1} of block Lanczos step "
                f"{j // b + 1}); check the operator"
            )
        D = C[j:]
        D = 0.5 * (D + D.T)
        self.H[j : j + b, j : j + b] = D
        self.anorm = max(self.anorm, float(np.linalg.norm(np.vstack([D, R]), 2)))
        self.V[j + b : j + 2 * b] = Q
        self.R = R
        self.size = j + b
        if self.size < self.m:
            self.H[j + b : j + 2 * b, j : j + b] = R
            self.H[j : j + b, j + b : j + 2 * b] = R.T
        return deficient

    def ritz(self):
        """Ritz values, vectors of ``H`` and residual norms ``||R Y_last||``."""
        s, b = self.size, self.b
        theta, Y = np.linalg.eigh(self.H[:s, :s])
        self.anorm = max(self.anorm, float(np.max(np.abs(theta))))
        return theta, Y, np.linalg.norm(self.R @ Y[s - b : s, :], axis=0)

    def restart(self, theta, Y, keep: np.ndarray) -> None:
        """Thick restart: keep the Ritz vectors ``Y[:, keep]``, continue from ``X_+``."""
        s, b, ell = self.size, self.b, len(keep)
        Yk = from_numpy(np.ascontiguousarray(Y[:, keep].T), like=self.op)
        rotate_rows(self.V, Yk, s)
        self.V[ell : ell + b] = self.V[s : s + b]
        arrow = self.R @ Y[s - b : s, keep]
        self.H[:] = 0.0
        self.H[np.arange(ell), np.arange(ell)] = theta[keep]
        self.H[ell : ell + b, :ell] = arrow
        self.H[:ell, ell : ell + b] = arrow.T
        self.size = ell

    def vectors(self, Y):
        """Ritz vectors ``V Y`` of shape ``(n, len(Y.T))``."""
        return self.V[: self.size].T @ from_numpy(np.ascontiguousarray(Y), like=self.op)


def num_keep(k: int, m: int, b: int, target: int) -> int:
    """Vectors kept at a restart: near ``target`` with ``m - keep`` a multiple of ``b``."""
    return m - b * max(1, (m - target) // b)
