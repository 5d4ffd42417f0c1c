r"""The Lyapunov and Stein equations behind :mod:`spectra.gramians`: inputs, stability, factors.

Every solver in :mod:`spectra.gramians` works on one equation in *controllability form*

.. math::

    M X + X M^T + B B^T = 0 \quad\text{(continuous)}, \qquad
    M X M^T - X + B B^T = 0 \quad\text{(discrete)},

with :math:`M = A, B = B` for the controllability Gramian and :math:`M = A^T, B = C^T`
for the observability Gramian (:class:`_Eq`, built and validated by :func:`_equation`).
The equation has a unique positive semi-definite solution when :math:`M` is stable:
Hurwitz (every eigenvalue with :math:`\operatorname{Re}\lambda < 0`) in continuous time,
Schur (:math:`|\lambda| < 1`) in discrete time.

This module holds what the methods share:

* **Stability screens.** :func:`_dense_check` is exact (all eigenvalues of the dense
  matrix).  :func:`_check_ritz` judges Ritz values :math:`\theta` of a Krylov
  projection: for a symmetric :math:`M` they lie in :math:`[\lambda_{\min},
  \lambda_{\max}]`, so an unstable one proves instability; for a non-symmetric
  :math:`M` an unstable Ritz pair counts only when its residual
  :math:`\|H_+ E_m^T y\|` is below ``_RITZ_CONFIRM`` :math:`\|H_m\|_F`.  Ritz values of
  :math:`M^{-1}`, and of the Cayley transform :math:`(M + I)^{-1}(M - I)` of a discrete
  :math:`M` (which maps the unit disc onto the left half-plane), are tested as
  continuous-time ones and reported as eigenvalues of :math:`M` through
  :math:`1/\theta` and :math:`(1 + \theta)/(1 - \theta)`.
* **Factors.** :func:`_psd_factor` turns a small PSD solution :math:`Y` into
  :math:`V L` with :math:`L L^T = Y`; :func:`_compress` rewrites any factor as
  :math:`U \operatorname{diag}(s)` (thin QR, then an SVD of the triangle), dropping the
  columns at rounding level.
* **The residual of a factor**, matrix-free (:func:`_residual`): with
  :math:`[M Z, Z, B] = Q [T_1, T_2, T_3]` (thin QR),
  :math:`R = Q (T_1 T_2^T + T_2 T_1^T + T_3 T_3^T) Q^T` (continuous) or
  :math:`Q (T_1 T_1^T - T_2 T_2^T + T_3 T_3^T) Q^T` (discrete), so
  :math:`\|R\|_F` is the norm of a :math:`3r + p` square matrix.
* **The dense solver** (:func:`_dense`): ``scipy.linalg.solve_continuous_lyapunov`` /
  ``solve_discrete_lyapunov`` (Bartels--Stewart) after the exact stability check.

References
----------
.. [1] R. H. Bartels and G. W. Stewart, "Solution of the matrix equation AX + XB = C",
   Comm. ACM 15(9) (1972) 820--826.
.. [2] Y. Saad, "Numerical solution of large Lyapunov equations", in Signal
   Processing, Scattering and Operator Theory, and Numerical Methods (1990) 503--511.
.. [3] P. Benner, J.-R. Li and T. Penzl, "Numerical solution of large-scale Lyapunov
   equations, Riccati equations, and linear-quadratic optimal control problems",
   Numer. Linear Algebra Appl. 15(9) (2008) 755--777.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from ..backend import from_numpy, is_torch, to_numpy
from ..operators import Operator, as_operator, is_sparse, require_square, wrapped_matrix
from ..results import NonFiniteError
from ..validation import check_choice

KINDS = ("controllability", "observability")
#: Arnoldi steps on ``A`` and on ``A^{-1}`` for the stability screen and the shifts.
_RITZ_STEPS, _RITZ_INV_STEPS = 20, 10
#: Columns of the factor with singular value below this fraction of the largest are
#: dropped (their Gramian eigenvalues are below ``1e-28`` relative: rounding level).
_DROP = 1e-14
#: A non-symmetric Ritz pair with relative residual below this counts as an eigenpair.
_RITZ_CONFIRM = 1e-6


# ---------------------------------------------------------------------------- input
@dataclass
class _Eq:
    """The equation solved: ``M X + X M^T + B B^T = 0`` or ``M X M^T - X + B B^T = 0``."""

    op: Operator
    B: np.ndarray
    explicit: Any  # scipy sparse (CSC) or dense ndarray of M, or None
    symmetric: bool
    discrete: bool
    user_solve: Callable | None
    transpose: bool
    solves: int = 0

    @property
    def n(self) -> int:
        return self.op.shape[0]

    def mm(self, X: np.ndarray) -> np.ndarray:
        """``M X`` on host float64 arrays, with a finiteness check."""
        out = to_numpy(self.op.matmat(from_numpy(np.ascontiguousarray(X), like=self.op)))
        if not np.all(np.isfinite(out)):
            raise NonFiniteError("the product with A returned NaN or Inf")
        return out


def _transposed(raw: Any, explicit: Any) -> tuple[Operator, Any]:
    """``(operator of A^T, explicit A^T or None)`` for a non-symmetric ``A``."""
    if explicit is not None:
        T = explicit.T.tocsc() if is_sparse(explicit) else explicit.T
        return as_operator(T, symmetric=False), T
    if is_torch(raw):
        return as_operator(raw.T, symmetric=False), None
    if type(raw).__module__.startswith("scipy.sparse.linalg"):
        try:
            raw.rmatvec(np.zeros(raw.shape[0], dtype=raw.dtype))
        except NotImplementedError as exc:
            raise TypeError("the observability Gramian needs products with A^T, but this "
                            "LinearOperator has no rmatvec; give it one") from exc
        return as_operator(raw.T, symmetric=False), None
    raise TypeError(
        "the observability Gramian needs products with A^T, and this Operator is neither "
        "symmetric nor transposable; pass a scipy LinearOperator with rmatvec, or call "
        "gramian(A_transposed, C.T) with kind='controllability'"
    )


def _input_block(X: Any, n: int, name: str, transpose: bool) -> np.ndarray:
    """``B`` as ``(n, p)`` or ``C`` (``(q, n)``) as its transpose ``(n, q)``, float64."""
    if is_sparse(X):
        X = X.toarray()
    X = to_numpy(X) if is_torch(X) else np.asarray(X)
    if X.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real array, got dtype {X.dtype}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None] if not transpose else X[None, :]
    want = f"({n}, p)" if not transpose else f"(q, {n})"
    got_n = X.shape[1] if transpose else (X.shape[0] if X.ndim == 2 else -1)
    if X.ndim != 2 or got_n != n or min(X.shape) == 0:
        hint = " (pass C, not C.T)" if transpose and X.ndim == 2 and X.shape[0] == n else ""
        raise ValueError(f"{name} must have shape {want} to match A of order {n}, "
                         f"got {X.shape}{hint}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or Inf")
    if not np.any(X):
        raise ValueError(f"{name} is zero: the Gramian is zero")
    return X.T.copy() if transpose else X


def _equation(A: Any, X: Any, kind: str, discrete: bool, solve: Any, rng: Any) -> _Eq:
    check_choice(kind, "kind", KINDS)
    if solve is not None and not callable(solve):
        raise TypeError(f"solve must be callable (p, X, transpose) -> array, got {solve!r}")
    op = as_operator(A)
    require_square(op, "gramian")
    raw = wrapped_matrix(A)
    explicit = raw.tocsc() if is_sparse(raw) else (raw if isinstance(raw, np.ndarray) else None)
    symmetric = bool(op.check_symmetric(rng)) if op.symmetric is None else bool(op.symmetric)
    if explicit is not None and explicit.dtype != np.float64:  # explicit: work in float64
        explicit = explicit.astype(np.float64)
        op = as_operator(explicit, symmetric=symmetric)
    transpose = kind == "observability"
    if transpose and not symmetric:
        op, explicit = _transposed(raw, explicit)
    X = _input_block(X, op.shape[0], "C" if transpose else "B", transpose)
    return _Eq(op, X, explicit, symmetric, bool(discrete), solve, transpose)


# ---------------------------------------------------------------------------- stability
def _refuse(theta: complex, discrete: bool, how: str) -> None:
    if discrete:
        rule = "discrete time needs A Schur stable: every eigenvalue with |lambda| < 1"
        found = f"|lambda| = {abs(theta):.6g}"
    else:
        rule = "continuous time needs A Hurwitz: every eigenvalue with real part < 0"
        found = f"real part {theta.real:.6g}"
    raise ValueError(f"A is not stable ({rule}); found eigenvalue {theta:.6g} ({found}, {how})")


def _unstable(theta: np.ndarray, discrete: bool) -> np.ndarray:
    return np.abs(theta) >= 1.0 if discrete else theta.real >= 0.0


def _check_ritz(theta, resid, scale, discrete, symmetric, *, inverse=False,
                cayley=False) -> bool:
    """Refuse on a Ritz value that proves instability; return whether one is unconfirmed.

    For a symmetric ``A`` the Ritz values lie inside ``[lambda_min, lambda_max]``, so an
    unstable one is a proof.  Otherwise an unstable Ritz value counts once its residual
    is below ``_RITZ_CONFIRM * ||H||``.  ``inverse``: Ritz values of the inverse (the
    continuous test is the same).  ``cayley``: Ritz values of the Cayley transform
    ``(A + I)^{-1}(A - I)`` of a discrete ``A`` (tested as continuous).
    """
    bad = _unstable(theta, discrete and not cayley)
    if not bad.any():
        return False

    def refuse(i: int, how: str) -> None:
        lam = complex(theta[i])
        lam = 1.0 / lam if inverse and lam != 0 else lam
        lam = (1.0 + lam) / (1.0 - lam) if cayley and lam != 1 else lam
        _refuse(lam, discrete, how)

    if symmetric:
        refuse(int(np.flatnonzero(bad)[0]), "a Ritz value of the symmetric A, which lies "
               "between its extreme eigenvalues")
    confirmed = np.flatnonzero(bad & (resid <= _RITZ_CONFIRM * max(scale, 1e-300)))
    if confirmed.size:
        i = int(confirmed[0])
        refuse(i, f"a Ritz value with relative residual {resid[i] / max(scale, 1e-300):.1e}")
    return True


def _dense_check(M: np.ndarray, discrete: bool, symmetric: bool) -> None:
    lam = np.linalg.eigvalsh(M) if symmetric else np.linalg.eigvals(M)
    bad = _unstable(np.asarray(lam, dtype=complex), discrete)
    if bad.any():
        worst = lam[bad][np.argmax(np.abs(lam[bad]) if discrete else lam[bad].real)]
        _refuse(complex(worst), discrete, "exact eigenvalue of the dense matrix")


# ---------------------------------------------------------------------------- factors
def _psd_factor(Y: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``basis @ L`` with ``L L^T = Y`` (eigenvalues below rounding level dropped)."""
    mu, U = np.linalg.eigh(Y)
    keep = (mu > _DROP**2 * max(mu[-1], 0.0))[::-1]
    return basis @ (U[:, ::-1][:, keep] * np.sqrt(mu[::-1][keep]))


def _compress(Z: np.ndarray, rank: int | None) -> np.ndarray:
    """``Z`` as ``U diag(s)`` (orthonormal ``U``, ``s`` descending), rounding columns dropped."""
    if Z.shape[1] == 0:
        return Z
    Q, R = np.linalg.qr(Z)
    U, s, _ = np.linalg.svd(R)
    keep = int(np.sum(s > _DROP * s[0])) if s[0] > 0 else 0
    keep = keep if rank is None else min(keep, rank)
    return Q @ (U[:, :keep] * s[:keep])


def _residual(eq: _Eq, Z: np.ndarray) -> float:
    r"""``||M Z Z^T + Z Z^T M^T + B B^T||_F`` (or the Stein residual), matrix-free.

    With ``[M Z, Z, B] = Q [T_1, T_2, T_3]`` (thin QR) the residual is
    ``Q (T_1 T_2^T + T_2 T_1^T + T_3 T_3^T) Q^T`` (Stein: ``T_1 T_1^T - T_2 T_2^T +
    T_3 T_3^T``), whose Frobenius norm is that of the small middle matrix.
    """
    r = Z.shape[1]
    MZ = eq.mm(Z) if r else np.zeros_like(Z)
    T = np.linalg.qr(np.hstack([MZ, Z, eq.B]), mode="r")
    T1, T2, T3 = T[:, :r], T[:, r:2 * r], T[:, 2 * r:]
    if eq.discrete:
        K = T1 @ T1.T - T2 @ T2.T + T3 @ T3.T
    else:
        K = T1 @ T2.T + T2 @ T1.T + T3 @ T3.T
    return float(np.linalg.norm(K))


# ---------------------------------------------------------------------------- dense
def _dense(eq: _Eq) -> tuple[np.ndarray, dict]:
    M = eq.explicit
    if M is None:
        M = eq.mm(np.eye(eq.n))
    elif not isinstance(M, np.ndarray):
        M = M.toarray()
    M = np.asarray(M, dtype=np.float64)
    _dense_check(M, eq.discrete, eq.symmetric)
    BB = eq.B @ eq.B.T
    X = sla.solve_discrete_lyapunov(M, BB) if eq.discrete else sla.solve_continuous_lyapunov(
        M, -BB)
    return _psd_factor((X + X.T) / 2, np.eye(eq.n)), {
        "converged": True, "message": "dense scipy.linalg solve", "history": []}
