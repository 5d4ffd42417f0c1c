r"""Block Arnoldi and the Krylov projection method for Lyapunov and Stein equations.

For :math:`M X + X M^T + B B^T = 0` (or :math:`M X M^T - X + B B^T = 0`), with
:math:`B = V_1 F_0` (:math:`V_1` orthonormal), block Arnoldi (:class:`_Arnoldi`) builds
an orthonormal basis :math:`V_m` of the block Krylov space
:math:`\mathcal K_m(M, V_1) = \operatorname{span}\{V_1, M V_1, \dots, M^{k-1} V_1\}`
with the relation

.. math::

    M V_m = V_m H_m + V_+ H_+ E_m^T,

where :math:`H_m = V_m^T M V_m` is block upper Hessenberg and :math:`E_m` selects the
last block of columns.  Each block is orthogonalised by block classical Gram--Schmidt,
repeated once when a column loses more than :math:`1 - 1/\sqrt 2` of its norm (the
Daniel--Gragg--Kaufman--Stewart test), then by a column-pivoted QR whose negligible
columns are dropped (deflation: the block shrinks, and the space is invariant when it
vanishes).

Galerkin projection (:func:`_krylov`) solves the small equation
:math:`H_m Y + Y H_m^T + F F^T = 0` (:math:`F = E_1 F_0`; discrete:
:math:`H_m Y H_m^T - Y + F F^T = 0`) with ``scipy.linalg``, or, for a symmetric
:math:`M`, by diagonalising :math:`H_m = Q \Theta Q^T`:
:math:`Y = Q [(G G^T)_{ij} / s_{ij}] Q^T`, :math:`G = Q^T F`,
:math:`s_{ij} = -(\theta_i + \theta_j)` (discrete: :math:`1 - \theta_i \theta_j`)
(:func:`_projected`).  The approximation :math:`X_m = V_m Y V_m^T` has a residual known
from the Arnoldi relation without any product with :math:`M`
(:func:`_arnoldi_residual`):

.. math::

    \|R_m\|_F = \sqrt 2\, \|H_+ E_m^T Y\|_F \quad\text{(continuous)}, \qquad
    \|R_m\|_F^2 = 2 \|H_m Y E_m H_+^T\|_F^2 + \|H_+ E_m^T Y E_m H_+^T\|_F^2
    \quad\text{(discrete)}.

A projected :math:`H_m` may be unstable although :math:`M` is stable (non-normal
:math:`M`); the iteration then goes on, and refuses only when an unstable Ritz pair
is confirmed as an eigenpair (:func:`spectra.gramians.equation._check_ritz`).  :func:`_ritz`
runs a short single-vector Arnoldi from a random start for the stability screen and
for the ADI shifts of :mod:`spectra.gramians.adi`.

References
----------
.. [1] Y. Saad, "Numerical solution of large Lyapunov equations", in Signal
   Processing, Scattering and Operator Theory, and Numerical Methods (1990) 503--511.
.. [2] I. M. Jaimoukha and E. M. Kasenally, "Krylov subspace methods for solving large
   Lyapunov equations", SIAM J. Numer. Anal. 31(1) (1994) 227--251.
.. [3] J. W. Daniel, W. B. Gragg, L. Kaufman and G. W. Stewart, "Reorthogonalization and
   stable algorithms for updating the Gram-Schmidt QR factorization", Math. Comp.
   30(136) (1976) 772--795.
.. [4] V. Simoncini, "Computational methods for linear matrix equations", SIAM Rev.
   58(3) (2016) 377--441.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla

from .equation import (
    _RITZ_STEPS,
    _check_ritz,
    _Eq,
    _psd_factor,
    _unstable,
)

#: Daniel--Gragg--Kaufman--Stewart threshold for a second Gram--Schmidt pass.
_DGKS = 0.7071


# ---------------------------------------------------------------------------- Arnoldi
class _Arnoldi:
    """Block Arnoldi on the host with block sizes shrinking on rank deficiency.

    ``apply(V_j) = M V_j``; block classical Gram--Schmidt twice, then a pivoted QR whose
    columns with ``|R_ii| <= 1e-12 ||M V_j||`` are dropped (deflation).  The basis is
    stored by rows (``Vt``, contiguous vectors).  After ``k`` steps:
    ``M V[:, :m] = V[:, :m] H[:m, :m] + V[:, m:m+r] H[m:m+r, last block]``.
    """

    def __init__(self, apply: Callable, V1: np.ndarray, max_cols: int):
        n, p = V1.shape
        self.apply, self.cap = apply, max_cols
        self.Vt = np.empty((max_cols + p, n))
        self.Vt[:p] = V1.T
        self.H = np.zeros((max_cols + p, max_cols))
        self.blocks = [(0, p)]

    @property
    def m(self) -> int:
        """Columns of the projection space (the newest block excluded)."""
        return self.blocks[-1][0]

    def step(self) -> bool:
        """Add a block; ``False`` when the space became invariant or the basis is full."""
        j0, j1 = self.blocks[-1]
        if j1 > self.cap or j1 == j0:
            return False
        Vt = self.Vt[:j1]
        W = self.apply(self.Vt[j0:j1].T)
        scale = np.linalg.norm(W)
        before = np.linalg.norm(W, axis=0)
        for _ in range(2):  # a second pass only after cancellation (DGKS test)
            h = Vt @ W
            W -= Vt.T @ h
            self.H[:j1, j0:j1] += h
            if np.all(np.linalg.norm(W, axis=0) > _DGKS * before):
                break
        Q, R, piv = sla.qr(W, mode="economic", pivoting=True)
        r = int(np.sum(np.abs(np.diag(R)) > 1e-12 * max(scale, 1e-300)))
        r = min(r, self.Vt.shape[1] - j1)
        self.Vt[j1:j1 + r] = Q[:, :r].T
        self.H[j1:j1 + r, j0:j1][:, piv] = R[:r]
        self.blocks.append((j1, j1 + r))
        return r > 0

    def coupling(self) -> tuple[np.ndarray, slice]:
        """``(H_+, rows of the last projected block)``."""
        (j0, j1), (k0, k1) = self.blocks[-2], self.blocks[-1]
        return self.H[k0:k1, j0:j1], slice(j0, j1)

    def ritz(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Ritz values, their residual norms, and ``||H_m||_F``."""
        m = self.m
        Hm = self.H[:m, :m]
        theta, Y = np.linalg.eig(Hm)
        Hp, rows = self.coupling()
        resid = np.linalg.norm(Hp @ Y[rows], axis=0)
        return theta, resid, float(np.linalg.norm(Hm))


def _ritz(apply: Callable, n: int, steps: int, g: Any) -> tuple[np.ndarray, np.ndarray, float]:
    v = g.standard_normal((n, 1))
    arn = _Arnoldi(apply, v / np.linalg.norm(v), min(steps, n))
    while arn.m < min(steps, n) and arn.step():
        pass
    return arn.ritz()


# ---------------------------------------------------------------------------- Krylov
def _projected(H: np.ndarray, F: np.ndarray, discrete: bool, symmetric: bool):
    """Solve ``H Y + Y H^T + F F^T = 0`` (or ``H Y H^T - Y + F F^T = 0``).

    Returns ``Y``, or ``None`` when ``H`` is not stable (no PSD solution).  A symmetric
    ``H = Q diag(theta) Q^T`` gives ``Y = Q [(G G^T)_{ij} / s_{ij}] Q^T`` with
    ``G = Q^T F`` and ``s_ij = -(theta_i + theta_j)`` (``1 - theta_i theta_j``).
    """
    if symmetric:
        theta, Q = np.linalg.eigh((H + H.T) / 2)
        if _unstable(theta, discrete).any():
            return None
        G = Q.T @ F
        S = 1.0 - np.outer(theta, theta) if discrete else -np.add.outer(theta, theta)
        return Q @ ((G @ G.T) / S) @ Q.T
    if _unstable(np.linalg.eigvals(H), discrete).any():
        return None
    FF = F @ F.T
    Y = sla.solve_discrete_lyapunov(H, FF) if discrete else sla.solve_continuous_lyapunov(H, -FF)
    return (Y + Y.T) / 2


def _arnoldi_residual(arn: _Arnoldi, Y: np.ndarray, discrete: bool) -> float:
    """Residual norm of ``V Y V^T`` from the Arnoldi relation (no product)."""
    Hp, rows = arn.coupling()
    if not discrete:
        return float(np.sqrt(2.0) * np.linalg.norm(Hp @ Y[rows]))
    m = arn.m
    cross = arn.H[:m, :m] @ Y[:, rows] @ Hp.T
    corner = Hp @ Y[rows, rows] @ Hp.T
    return float(np.sqrt(2.0 * np.linalg.norm(cross) ** 2 + np.linalg.norm(corner) ** 2))


def _krylov(eq: _Eq, tol: float, max_cols: int, g: Any) -> tuple[np.ndarray, dict]:
    n = eq.n
    U, s, Vt = np.linalg.svd(eq.B, full_matrices=False)
    keep = s > s[0] * max(eq.B.shape) * np.finfo(float).eps
    F0 = s[keep, None] * Vt[keep]  # B = U_k F0
    theta, resid, scale = _ritz(eq.mm, n, _RITZ_STEPS, g)  # a random start sees all modes
    _check_ritz(theta, resid, scale, eq.discrete, eq.symmetric)
    arn = _Arnoldi(eq.mm, U[:, keep], min(max_cols, n))
    norm_bb = np.linalg.norm(eq.B.T @ eq.B)
    best, hist, steps, due, done = None, [], 0, 1, False
    while not done:
        done = not arn.step()
        steps += 1
        if not done and steps < due:
            continue
        due = steps + max(1, steps // 10)  # checks cost O(m^3): about every 10 % growth
        m = arn.m
        F = np.zeros((m, F0.shape[1]))
        F[: F0.shape[0]] = F0
        Y = _projected(arn.H[:m, :m], F, eq.discrete, eq.symmetric)
        if Y is None:  # an unstable Ritz value: refuse if it is an eigenvalue, else go on
            _check_ritz(*arn.ritz(), eq.discrete, eq.symmetric)
            continue
        hist.append(_arnoldi_residual(arn, Y, eq.discrete) / norm_bb)
        best = (Y, m)
        done = done or hist[-1] <= tol
    if best is None:
        raise ValueError(
            "the projected matrix H_m = V^T A V stayed unstable (a Ritz value with "
            f"{'|theta| >= 1' if eq.discrete else 'Re theta >= 0'} that is not an "
            "eigenvalue): A is unstable or strongly non-normal; try method='dense' or 'adi'"
        )
    Y, m = best
    conv = hist[-1] <= tol
    msg = (f"Krylov basis of {m} vectors, relative residual {hist[-1]:.2e}"
           + ("" if conv else f" > tol = {tol:g} (basis limit {max_cols} reached)"))
    return _psd_factor(Y, arn.Vt[:m].T), {"converged": conv, "message": msg, "history": hist}
