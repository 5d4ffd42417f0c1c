r"""Gramians of linear systems and Hankel singular values, from products and solves.

For the system :math:`x' = A x + B u,\ y = C x` (or :math:`x_{k+1} = A x_k + B u_k`
in discrete time) the controllability Gramian :math:`P` and the observability
Gramian :math:`Q` solve the Lyapunov (continuous) or Stein (discrete) equations

.. math::

    A P + P A^T + B B^T = 0, \qquad A^T Q + Q A + C^T C = 0, \\
    A P A^T - P + B B^T = 0, \qquad A^T Q A - Q + C^T C = 0,

which have unique positive semi-definite solutions when :math:`A` is stable
(Hurwitz: every eigenvalue in the open left half-plane; Schur: inside the unit
disc).  The observability equation is the controllability equation of
:math:`(A^T, C^T)`, so one solver serves both.  Gramians are returned as low-rank
factors :math:`W \approx Z Z^T`, never as ``n x n`` matrices.

Methods
-------
``"krylov"`` (products with :math:`A` only; Saad 1990, Jaimoukha & Kasenally 1994)
    A block Arnoldi basis :math:`V_m` of :math:`\mathcal K_m(A, B)` with
    :math:`A V_m = V_m H_m + V_+ H_+ E_m^T`; the projected equation
    :math:`H_m Y + Y H_m^T + E_1 B_1 B_1^T E_1^T = 0` (``scipy.linalg`` Lyapunov or
    Stein solver; by diagonalisation of :math:`H_m` when :math:`A` is symmetric)
    gives :math:`P_m = V_m Y V_m^T`, whose residual is known without a product:
    :math:`\|R\|_F = \sqrt 2\, \|H_+ E_m^T Y\|_F` (continuous), and
    :math:`\|R\|_F^2 = 2 \|H_m Y E_m H_+^T\|_F^2 + \|H_+ E_m^T Y E_m H_+^T\|_F^2`
    (discrete).
``"adi"`` (shifted solves; Penzl 2000, Li & White 2002, Benner, Kürschner & Saak 2013)
    Low-rank ADI: :math:`V_j = (A + p_j I)^{-1} W_{j-1}`,
    :math:`W_j = W_{j-1} - 2\,\mathrm{Re}(p_j) V_j`, :math:`Z_j = [Z_{j-1},
    \sqrt{-2 p_j} V_j]` for a real shift (complex pairs in real arithmetic), with the
    residual :math:`R_j = W_j W_j^T`, so :math:`\|R_j\|_F = \|W_j^T W_j\|_F` costs
    nothing.  Shifts: Wachspress's elliptic-function shifts for a real spectrum, or
    Penzl's heuristic (Ritz values of :math:`A` and :math:`A^{-1}`).  A discrete
    system runs through the Cayley transform :math:`A_c = (A + I)^{-1}(A - I)`,
    :math:`B_c = \sqrt 2 (A + I)^{-1} B`, which has the same Gramian; a shifted solve
    with :math:`A_c` is one shifted solve with :math:`A`.
``"dense"``
    ``scipy.linalg.solve_continuous_lyapunov`` / ``solve_discrete_lyapunov`` on the
    explicit matrix, after an exact eigenvalue check.

Hankel singular values are computed by the square-root method: with
:math:`P = L_c L_c^T`, :math:`Q = L_o L_o^T`, :math:`\sigma_i = \sigma_i(L_o^T L_c)`
(Laub, Heath, Paige & Ward 1987; Tombs & Postlethwaite 1987), and a balanced
truncation to order ``r`` satisfies :math:`\|G - G_r\|_{H_\infty} \le 2
\sum_{i > r} \sigma_i` (Enns 1984; Glover 1984; Al-Saggaf & Franklin 1987 in
discrete time).

The solvers live in private modules, each with the derivations it implements:
:mod:`spectra.gramians.equation` (the equation in controllability form, input checks,
stability screens, factor compression, the matrix-free residual, the dense solver),
:mod:`spectra.gramians.krylov` (block Arnoldi and the Galerkin projection) and
:mod:`spectra.gramians.adi` (low-rank ADI, the Cayley transform, the shifts).

References
----------
.. [1] Y. Saad, "Numerical solution of large Lyapunov equations", in Signal
   Processing, Scattering and Operator Theory, and Numerical Methods (1990) 503--511.
.. [2] I. M. Jaimoukha and E. M. Kasenally, "Krylov subspace methods for solving large
   Lyapunov equations", SIAM J. Numer. Anal. 31(1) (1994) 227--251.
.. [3] T. Penzl, "A cyclic low-rank Smith method for large sparse Lyapunov equations",
   SIAM J. Sci. Comput. 21(4) (2000) 1401--1418.
.. [4] J.-R. Li and J. White, "Low rank solution of Lyapunov equations", SIAM J.
   Matrix Anal. Appl. 24(1) (2002) 260--280.
.. [5] P. Benner, P. Kürschner and J. Saak, "Efficient handling of complex shift
   parameters in the low-rank ADI method", Numer. Algorithms 62(2) (2013) 225--251.
.. [6] E. L. Wachspress, "Iterative solution of the Lyapunov matrix equation", Appl.
   Math. Lett. 1(1) (1988) 87--90.
.. [7] A. J. Laub, M. T. Heath, C. C. Paige and R. C. Ward, "Computation of system
   balancing transformations and other applications of simultaneous
   diagonalization algorithms", IEEE Trans. Automat. Control 32(2) (1987) 115--122.
.. [8] K. Glover, "All optimal Hankel-norm approximations of linear multivariable
   systems and their L-infinity error bounds", Int. J. Control 39(6) (1984).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..operators import Operator
from ..probes import as_rng
from ..results import warn_not_converged
from ..validation import check_bool, check_choice, check_float, check_int
from .adi import _adi
from .equation import KINDS as KINDS  # re-exported
from .equation import _compress, _dense, _Eq, _equation, _residual
from .krylov import _krylov

__all__ = ["KINDS", "GramianResult", "HankelResult", "gramian", "hankel_singular_values"]

METHODS = ("auto", "krylov", "adi", "dense")
SHIFTS = ("auto", "wachspress", "penzl")
#: ``method="auto"`` solves densely up to this order (forming ``A`` costs ``n`` products).
DENSE_MAX = 200


@dataclass(frozen=True, eq=False)
class GramianResult:
    r"""A Gramian :math:`W \approx Z Z^T` held as a low-rank factor.

    Attributes
    ----------
    factor : ndarray, shape ``(n, r)``
        ``Z = U diag(s)`` with orthonormal ``U`` and ``s`` descending: the columns are
        orthogonal, and ``s**2`` are the non-zero eigenvalues of ``Z Z^T``.
    kind : str
        ``"controllability"`` or ``"observability"``.
    discrete : bool
    method : str
        ``"krylov"``, ``"adi"`` or ``"dense"``.
    residual_norm : float
        :math:`\|A Z Z^T + Z Z^T A^T + B B^T\|_F` (or the Stein residual) of the returned
        factor, computed matrix-free from a thin QR of :math:`[A Z, Z, B]`.
    relative_residual : float
        ``residual_norm`` divided by :math:`\|B B^T\|_F = \|B^T B\|_F`.
    num_matvecs : int
        Products with ``A`` (or ``A^T``), the final residual check included.
    num_solves : int
        Columns solved with shifted matrices ``A + p I`` (``"adi"`` only).
    converged : bool
        Whether the iteration met ``tol``.
    message : str
    shifts : ndarray or None
        ADI shifts (complex), one per step; the matrix they shift is ``A_c`` for a
        discrete system.
    history : ndarray
        Relative residual at each check of the iteration.
    """

    factor: np.ndarray = field(repr=False)
    kind: str
    discrete: bool
    method: str
    residual_norm: float
    relative_residual: float
    num_matvecs: int
    num_solves: int
    converged: bool
    message: str
    shifts: np.ndarray | None = field(default=None, repr=False)
    history: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def rank(self) -> int:
        """Number of columns of :attr:`factor`."""
        return int(self.factor.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, n)``, the shape of the Gramian."""
        n = self.factor.shape[0]
        return (n, n)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Non-zero eigenvalues of ``Z Z^T``, descending (squared column norms)."""
        return np.sum(self.factor**2, axis=0)

    def trace(self) -> float:
        """``tr(Z Z^T) = ||Z||_F^2``."""
        return float(np.sum(self.factor**2))

    def matvec(self, v: Any) -> np.ndarray:
        """Return ``Z (Z^T v)`` for a vector (or an ``(n, k)`` block) ``v``."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape[:1] != (self.factor.shape[0],) or v.ndim > 2:
            raise ValueError(
                f"matvec expects shape ({self.factor.shape[0]},) or "
                f"({self.factor.shape[0]}, k), got {v.shape}"
            )
        return self.factor @ (self.factor.T @ v)

    def as_operator(self) -> Operator:
        """The Gramian as a symmetric positive semi-definite :class:`~spectra.Operator`."""
        return Operator.from_matvec(self.matvec, self.shape, dtype=np.float64,
                                    symmetric=True, psd=True, matmat=self.matvec)


@dataclass(frozen=True, eq=False)
class HankelResult:
    r"""Hankel singular values with the balanced-truncation error bounds.

    Attributes
    ----------
    values : ndarray
        Hankel singular values, descending: those above the rounding level
        ``eps * sigma_1 * rank`` of the square-root product.  Their absolute errors
        are of the order of ``tol * sigma_1`` (the Gramians' relative residual), so
        values much below that carry large relative errors.
    truncation_bounds : ndarray, shape ``(len(values) + 1,)``
        ``truncation_bounds[r] = 2 * values[r:].sum()``: the bound on the
        :math:`H_\infty` error of a balanced truncation to order ``r`` (multiple
        values counted with multiplicity, which can only enlarge the bound).  Values
        below the factors' ranks are not seen; they are below the Gramians' accuracy.
    controllability, observability : GramianResult
    discrete : bool
    converged : bool
        Both Gramians converged.
    message : str
    """

    values: np.ndarray
    truncation_bounds: np.ndarray
    controllability: GramianResult = field(repr=False)
    observability: GramianResult = field(repr=False)
    discrete: bool
    converged: bool
    message: str

    @property
    def num_matvecs(self) -> int:
        """Products with ``A`` and ``A^T`` together."""
        return self.controllability.num_matvecs + self.observability.num_matvecs

    @property
    def num_solves(self) -> int:
        """Shifted solves (columns) with ``A`` and ``A^T`` together."""
        return self.controllability.num_solves + self.observability.num_solves

    def error_bound(self, r: int) -> float:
        r"""Balanced-truncation bound :math:`2 \sum_{i > r} \sigma_i` for order ``r``."""
        r = check_int(r, "r")
        if not 0 <= r <= len(self.values):
            raise ValueError(f"r must be in [0, {len(self.values)}], got {r}")
        return float(self.truncation_bounds[r])


def _check_options(method, tol, rank, shifts, max_matvecs, max_solves, discrete) -> Any:
    check_choice(method, "method", METHODS)
    check_bool(discrete, "discrete")
    check_float(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
    for name, value in (("rank", rank), ("max_matvecs", max_matvecs),
                        ("max_solves", max_solves)):
        if value is not None:
            check_int(value, name, low=1, hint=" (or None)")
    if shifts is None or isinstance(shifts, str):
        shifts = "auto" if shifts is None else shifts
        if shifts not in SHIFTS:
            raise ValueError(f"shifts must be one of {SHIFTS} or an array, got {shifts!r}")
        return shifts
    p = np.atleast_1d(np.asarray(shifts, dtype=complex))
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p.real >= 0):
        raise ValueError("shifts must be a non-empty 1-d array of finite values with negative "
                         "real part (for a discrete system: of the Cayley transform "
                         f"(A + I)^-1 (A - I)), got {shifts!r}")
    upper = p[p.imag > 0]
    if not all(np.any(np.isclose(p, z.conjugate(), rtol=1e-12)) for z in upper):
        raise ValueError("complex shifts must come with their conjugates")
    return p[p.imag >= 0]


def _choose(method: str, eq: _Eq) -> str:
    if method != "auto":
        if method == "adi" and eq.explicit is None and eq.user_solve is None:
            raise ValueError("method='adi' needs shifted solves: pass A as a scipy sparse "
                             "matrix or a numpy array, or give solve=(p, X, transpose) -> "
                             "(A + p I)^{-1} X (A^T when transpose)")
        return method
    if eq.n <= DENSE_MAX:
        return "dense"
    return "adi" if eq.explicit is not None or eq.user_solve is not None else "krylov"


def gramian(
    A: Any,
    B: Any,
    *,
    kind: str = "controllability",
    discrete: bool = False,
    method: str = "auto",
    rank: int | None = None,
    tol: float = 1e-10,
    shifts: Any = None,
    solve: Callable | None = None,
    max_matvecs: int | None = None,
    max_solves: int | None = None,
    rng: Any = None,
) -> GramianResult:
    r"""Controllability or observability Gramian of a linear system, as a low-rank factor.

    Solves :math:`A P + P A^T + B B^T = 0` (``kind="controllability"``) or
    :math:`A^T Q + Q A + C^T C = 0` (``kind="observability"``, with ``C`` passed as
    ``B``), or the Stein equations :math:`A P A^T - P + B B^T = 0`,
    :math:`A^T Q A - Q + C^T C = 0` when ``discrete=True``.  See the module notes
    for the methods.

    Parameters
    ----------
    A : ndarray, scipy sparse matrix, scipy LinearOperator, torch.Tensor or Operator
        The state matrix, stable (Hurwitz, or Schur when ``discrete``).  The
        observability Gramian needs products with :math:`A^T`: explicit matrices and
        ``LinearOperator`` s with ``rmatvec`` give them; an :class:`Operator` must be
        symmetric.
    B : array_like
        Inputs, shape ``(n, p)`` or ``(n,)``; for ``kind="observability"`` the outputs
        ``C``, shape ``(q, n)`` or ``(n,)``.
    kind : {"controllability", "observability"}
    discrete : bool
        Discrete time (Stein equation).
    method : {"auto", "krylov", "adi", "dense"}
        ``"auto"``: ``"dense"`` for ``n <= DENSE_MAX`` (200), else ``"adi"`` when shifted
        solves exist (``A`` sparse or a numpy array, or ``solve`` given), else
        ``"krylov"``.
    rank : int, optional
        Keep at most this many columns (the best rank-``rank`` approximation of the
        computed Gramian).
    tol : float
        Stop when :math:`\|R\|_F \le` ``tol`` :math:`\|B^T B\|_F` (``R`` the residual).
        Implicit float32 operators reach about ``1e-6``; explicit matrices are used in
        float64.
    shifts : {"auto", "wachspress", "penzl"} or array_like, optional
        ADI shifts (negative real parts; complex ones with their conjugates), used
        cyclically.  ``"auto"``: Wachspress's shifts when the Ritz values of ``A`` are
        real, else Penzl's heuristic (16 shifts from 20 Ritz values of ``A`` and 10 of
        ``A^{-1}``).  For a discrete system, shifts of the Cayley transform.
    solve : callable, optional
        ``solve(p, X, transpose) -> (A + p I)^{-1} X`` (``(A^T + p I)^{-1} X`` when
        ``transpose``) for a scalar ``p`` (complex for complex shifts) and an ``(n, k)``
        block ``X``; replaces the sparse LU for ``"adi"``.
    max_matvecs : int, optional
        Largest Krylov basis (default ``min(n, 1000 p)``, and at most 2 GiB of basis).
    max_solves : int, optional
        Most shifted solves (columns) for ``"adi"``, the 10 (discrete: 30) of the shift
        computation included (default ``200 p``).
    rng : None, int or numpy Generator
        Start vectors of the Arnoldi runs behind the stability screen and the shifts.

    Returns
    -------
    GramianResult
        ``converged=False`` (with a :class:`~spectra.ConvergenceWarning`) when ``tol``
        was not met within the budget.

    Raises
    ------
    ValueError
        For an unstable ``A`` (with the eigenvalue found: exact for ``"dense"``, a Ritz
        value otherwise), mismatched shapes, NaN or Inf, or bad options.
    TypeError
        For wrong types, or no way to apply :math:`A^T` for an observability Gramian.

    Notes
    -----
    The stability screen is exact for ``"dense"``.  Otherwise it looks at Ritz values
    from 20 Arnoldi steps on ``A`` (and 10 on ``A^{-1}`` for ``"adi"``) plus the
    projected matrices: for a symmetric ``A`` an unstable Ritz value proves instability;
    for a non-symmetric one it must also have a small residual.  An unstable
    eigenvalue the Krylov spaces never see is then caught by the iteration failing to
    converge, not by a refusal.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, spectra
    >>> A = -np.diag([1.0, 2.0, 3.0]) + np.diag([0.5, 0.5], 1)
    >>> B = np.ones((3, 1))
    >>> G = spectra.gramian(A, B)
    >>> P = scipy.linalg.solve_continuous_lyapunov(A, -B @ B.T)
    >>> bool(np.allclose(G.factor @ G.factor.T, P))
    True
    """
    g = as_rng(rng)
    if not isinstance(g, np.random.Generator):
        raise TypeError("gramian needs rng as None, an int seed or a numpy Generator")
    shifts = _check_options(method, tol, rank, shifts, max_matvecs, max_solves, discrete)
    eq = _equation(A, B, kind, discrete, solve, g)
    method = _choose(method, eq)
    start, p = eq.op.num_matvecs, eq.B.shape[1]
    if method == "dense":
        Z, info = _dense(eq)
    elif method == "krylov":
        cap = max(p, min(eq.n, 1000 * p, 2**31 // (8 * eq.n)))
        if max_matvecs is not None and max_matvecs < p:
            raise ValueError(f"max_matvecs must be at least the number of columns of B "
                             f"({p}), got {max_matvecs}")
        Z, info = _krylov(eq, float(tol), max_matvecs or cap, g)
    else:
        Z, info = _adi(eq, float(tol), shifts, max_solves or 200 * p, g)
    Z = _compress(Z, rank) if method == "adi" else Z[:, :rank]  # (the others: orthogonal)
    res = _residual(eq, Z)
    rel = res / np.linalg.norm(eq.B.T @ eq.B)
    msg = info["message"] + (f"; truncated to rank {rank}" if rank and Z.shape[1] == rank else "")
    if not info["converged"]:
        warn_not_converged(f"gramian ({kind}, {method}) did not converge: {msg}")
    return GramianResult(
        factor=Z, kind=kind, discrete=bool(discrete), method=method, residual_norm=res,
        relative_residual=float(rel), num_matvecs=eq.op.num_matvecs - start,
        num_solves=eq.solves, converged=info["converged"], message=msg,
        shifts=info.get("shifts"), history=np.asarray(info["history"], dtype=float),
    )


def hankel_singular_values(
    A: Any,
    B: Any,
    C: Any,
    *,
    discrete: bool = False,
    method: str = "auto",
    rank: int | None = None,
    tol: float = 1e-10,
    shifts: Any = None,
    solve: Callable | None = None,
    max_matvecs: int | None = None,
    max_solves: int | None = None,
    rng: Any = None,
) -> HankelResult:
    r"""Hankel singular values of :math:`(A, B, C)` by the square-root method.

    Computes low-rank factors :math:`P \approx L_c L_c^T` and
    :math:`Q \approx L_o L_o^T` with :func:`gramian` and returns
    :math:`\sigma_i = \sigma_i(L_o^T L_c) = \sqrt{\lambda_i(P Q)}` with the
    balanced-truncation bounds :math:`\|G - G_r\|_{H_\infty} \le 2 \sum_{i > r}
    \sigma_i`.

    Parameters
    ----------
    A : matrix or operator
        Stable state matrix (see :func:`gramian`; products with :math:`A^T` needed).
    B : array_like, shape ``(n, p)`` or ``(n,)``
        Inputs.
    C : array_like, shape ``(q, n)`` or ``(n,)``
        Outputs.
    discrete, method, rank, tol, shifts, solve, max_matvecs, max_solves, rng
        As for :func:`gramian`, applied to both Gramians.

    Returns
    -------
    HankelResult

    Examples
    --------
    >>> import numpy as np, spectra
    >>> A = -np.diag([1.0, 2.0, 3.0])
    >>> hsv = spectra.hankel_singular_values(A, np.ones(3), np.ones(3))
    >>> bool(np.isclose(hsv.error_bound(0), 2 * hsv.values.sum()))
    True
    """
    g = as_rng(rng)
    kw = dict(discrete=discrete, method=method, rank=rank, tol=tol, shifts=shifts, solve=solve,
              max_matvecs=max_matvecs, max_solves=max_solves, rng=g)
    ctrb = gramian(A, B, kind="controllability", **kw)
    obsv = gramian(A, C, kind="observability", **kw)
    values = np.linalg.svd(obsv.factor.T @ ctrb.factor, compute_uv=False)
    if values.size:  # below eps * sigma_1 * rank the values are rounding noise
        values = values[values > np.finfo(float).eps * max(values.shape[0], 1) * values[0]]
    tail = np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])
    conv = ctrb.converged and obsv.converged
    return HankelResult(
        values=values, truncation_bounds=2.0 * tail, controllability=ctrb,
        observability=obsv, discrete=bool(discrete), converged=conv,
        message=f"controllability: {ctrb.message}; observability: {obsv.message}",
    )
