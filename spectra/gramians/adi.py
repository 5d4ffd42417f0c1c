r"""Low-rank ADI for Lyapunov and Stein equations, with its shifts.

Low-rank alternating-direction-implicit iteration (:func:`_adi`) for
:math:`M X + X M^T + B B^T = 0` with shifts :math:`p_j`
(:math:`\operatorname{Re} p_j < 0`): with :math:`W_0 = B`,

.. math::

    V_j = (M + p_j I)^{-1} W_{j-1}, \qquad
    W_j = W_{j-1} - 2 \operatorname{Re}(p_j)\, V_j, \qquad
    Z_j = [Z_{j-1}, \sqrt{-2 \operatorname{Re} p_j}\, V_j],

and the residual of :math:`Z_j Z_j^T` is :math:`R_j = W_j W_j^T`, so
:math:`\|R_j\|_F = \|W_j^T W_j\|_F` costs no product.  A complex pair
:math:`(p, \bar p)` is taken in one real step (one complex solve):
with :math:`\gamma = 2\sqrt{-\operatorname{Re} p}`, :math:`\delta = \operatorname{Re} p /
\operatorname{Im} p`,

.. math::

    W_{j+1} = W_{j-1} + \gamma^2 (\operatorname{Re} V_j + \delta \operatorname{Im} V_j),
    \qquad Z_{j+1} = [Z_{j-1},\ \gamma (\operatorname{Re} V_j + \delta \operatorname{Im} V_j),
    \ \gamma \sqrt{\delta^2 + 1}\, \operatorname{Im} V_j].

Shifted solves (:class:`_Solver`) use a cached sparse (``splu``) or dense
(``lu_factor``) LU per shift, or the user's ``solve``.

A discrete (Stein) equation :math:`A X A^T - X + B B^T = 0` is solved through the
Cayley transform (:func:`_cayley`) :math:`M = (A + I)^{-1}(A - I)`,
:math:`B_M = \sqrt 2 (A + I)^{-1} B`, whose continuous equation has the same solution;
:math:`(M + p I)^{-1} X = (A + q I)^{-1}(A + I) X / (1 + p)` with
:math:`q = (p - 1)/(p + 1)`, one shifted solve with :math:`A`, and the Stein residual
is :math:`\tfrac12 (A + I) W W^T (A + I)^T`.

Shifts (:func:`_auto_shifts`) come from Ritz values of :math:`M` and :math:`M^{-1}`
(:func:`spectra.gramians.krylov._ritz`): for a real spectrum in
:math:`[-b, -a]`, Wachspress's elliptic-function shifts (:func:`_wachspress`)
:math:`p_j = -b\, \operatorname{dn}((2j - 1) K / (2J), k)`, :math:`k^2 = 1 - (a/b)^2`,
with :math:`J` from the bound :math:`\max |r| \le 4 \exp(-\pi^2 J / \ln(4b/a))` set to
:math:`\sqrt{\mathrm{tol}}`; otherwise Penzl's heuristic (:func:`_penzl`), a greedy
min-max of :math:`|\prod_j (t - p_j)/(t + p_j)|` over the Ritz values.

References
----------
.. [1] T. Penzl, "A cyclic low-rank Smith method for large sparse Lyapunov equations",
   SIAM J. Sci. Comput. 21(4) (2000) 1401--1418.
.. [2] J.-R. Li and J. White, "Low rank solution of Lyapunov equations", SIAM J.
   Matrix Anal. Appl. 24(1) (2002) 260--280.
.. [3] P. Benner, P. Kürschner and J. Saak, "Efficient handling of complex shift
   parameters in the low-rank ADI method", Numer. Algorithms 62(2) (2013) 225--251.
.. [4] E. L. Wachspress, "Iterative solution of the Lyapunov matrix equation", Appl.
   Math. Lett. 1(1) (1988) 87--90.
.. [5] P. Benner, P. Kürschner and J. Saak, "Self-generating and efficient shift
   parameters in ADI methods for large Lyapunov and Sylvester equations", Electron.
   Trans. Numer. Anal. 43 (2014) 142--162.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg as sla

from .equation import _RITZ_INV_STEPS, _RITZ_STEPS, _check_ritz, _Eq
from .krylov import _ritz


# ---------------------------------------------------------------------------- ADI
class _Solver:
    """``(p, X) -> (A + p I)^{-1} X`` for the equation's matrix, factorisations cached."""

    def __init__(self, eq: _Eq):
        self.eq, self.cache = eq, {}

    def __call__(self, p: complex, X: np.ndarray) -> np.ndarray:
        eq, p = self.eq, complex(p)
        if eq.user_solve is not None:
            out = np.asarray(eq.user_solve(p if p.imag else p.real, X, eq.transpose))
        else:
            lu = self.cache.get(p)
            if lu is None:
                lu = self.cache[p] = self._factor(p)
            X = X.astype(complex) if p.imag else X
            out = lu.solve(X) if hasattr(lu, "solve") else sla.lu_solve(lu, X)
        if out.shape != X.shape or not np.all(np.isfinite(out)):
            raise ValueError(f"the shifted solve with p = {p:.6g} returned shape {out.shape} "
                             f"(expected {X.shape}) or non-finite values")
        eq.solves += X.shape[1]
        return out

    def _factor(self, p: complex):
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        M, dtype = self.eq.explicit, complex if p.imag else float
        try:
            if sp.issparse(M):
                shifted = M.astype(dtype) + (p if p.imag else p.real) * sp.identity(M.shape[0])
                return splu(shifted.tocsc())
            with warnings.catch_warnings():
                warnings.simplefilter("error", sla.LinAlgWarning)
                return sla.lu_factor(M.astype(dtype) + (p if p.imag else p.real) * np.eye(len(M)),
                                     check_finite=False)
        except (RuntimeError, sla.LinAlgWarning) as exc:
            shown = p if p.imag else p.real
            raise ValueError(f"A + ({shown:.6g}) I is singular; A must be stable") from exc


def _cayley(eq: _Eq, solve: _Solver):
    """Continuous form ``(solve_M, B_M, M, M^{-1}, residual(W))`` of the equation.

    Continuous: ``M = A``.  Discrete: ``M = (A + I)^{-1}(A - I)``, ``B_M = sqrt(2)
    (A + I)^{-1} B``, ``(M + pI)^{-1} X = (A + qI)^{-1}(A X + X) / (1 + p)`` with
    ``q = (p - 1)/(p + 1)``, and the Stein residual is ``(A + I) W W^T (A + I)^T / 2``.
    """
    if not eq.discrete:
        return (solve, eq.B, eq.mm, lambda X: solve(0.0, X),
                lambda W: np.linalg.norm(W.T @ W))

    def solve_m(p, X):
        AX = eq.mm(X) + X
        if abs(1.0 + p) < 1e-12:  # (M - I)^{-1} = -(A + I) / 2
            return -AX / 2.0
        return solve((p - 1.0) / (p + 1.0), AX) / (1.0 + p)

    def residual(W):
        U = eq.mm(W) + W
        return 0.5 * np.linalg.norm(U.T @ U)

    return (solve_m, np.sqrt(2.0) * solve(1.0, eq.B).real, lambda X: solve(1.0, eq.mm(X) - X),
            lambda X: solve(-1.0, eq.mm(X) + X), residual)


def _wachspress(a: float, b: float, tol: float) -> np.ndarray:
    """Wachspress's shifts for a spectrum of ``-M`` inside ``[a, b]``, ``0 < a <= b``.

    ``p_j = -b dn((2j - 1) K / (2J), k)``, ``k^2 = 1 - (a/b)^2``, with ``J`` from the
    bound ``max |r| <= 4 exp(-pi^2 J / ln(4 b / a))`` set to ``sqrt(tol)``.
    """
    from scipy.special import ellipj, ellipk

    if b <= a * (1.0 + 1e-8):
        return np.array([-np.sqrt(a * b)])
    J = int(np.clip(np.ceil(np.log(4 / np.sqrt(tol)) * np.log(4 * b / a) / np.pi**2), 1, 50))
    m = 1.0 - (a / b) ** 2
    u = (2 * np.arange(1, J + 1) - 1) * ellipk(m) / (2 * J)
    return -b * ellipj(u, m)[2]


def _penzl(cand: np.ndarray, count: int) -> np.ndarray:
    """Penzl's heuristic: greedy min-max of ``|prod (t - p)/(t + p)|`` over Ritz values."""
    cand = cand[cand.imag >= 0]
    pair = cand.imag > 0

    def logf(p):  # log |(t - p)/(t + p)| (times the conjugate's factor) at every t
        with np.errstate(divide="ignore"):
            out = np.log(np.abs((cand - p) / (cand + p)))
            if p.imag > 0:
                out += np.log(np.abs((cand - p.conjugate()) / (cand + p.conjugate())))
        return out

    table = np.array([logf(p) for p in cand])  # table[j, i]: shift j at point i
    first = int(np.argmin(table.max(axis=1)))
    chosen, total, used = [first], table[first].copy(), 1 + int(pair[first])
    while used < count and len(chosen) < len(cand):
        j = int(np.argmax(total))
        if j in chosen:
            break
        chosen.append(j)
        total += table[j]
        used += 1 + int(pair[j])
    return cand[chosen]


def _auto_shifts(spec, eq, mv, inv, tol, g) -> np.ndarray:
    n, cay = eq.n, eq.discrete
    th, res, sc = _ritz(mv, n, _RITZ_STEPS, g)
    _check_ritz(th, res, sc, cay, eq.symmetric, cayley=cay)
    thi, resi, sci = _ritz(inv, n, _RITZ_INV_STEPS, g)
    _check_ritz(thi, resi, sci, cay, eq.symmetric, inverse=True, cayley=cay)
    cand = np.concatenate([th, 1.0 / thi[thi != 0]])
    cand = cand[cand.real < 0]
    if cand.size == 0:
        raise ValueError("no stable Ritz value to build ADI shifts from; pass shifts=")
    real = eq.symmetric or bool(np.all(np.abs(cand.imag) <= 1e-8 * np.abs(cand)))
    if spec == "wachspress" and not real:
        raise ValueError("Wachspress shifts need a real spectrum, but A has complex Ritz "
                         "values; use shifts='penzl'")
    if spec == "wachspress" or (spec == "auto" and real):
        mag = np.abs(cand.real)
        return _wachspress(mag.min() / 1.05, mag.max() * 1.05, tol).astype(complex)
    cand = np.where(np.abs(cand.imag) <= 1e-8 * np.abs(cand), cand.real, cand)
    return _penzl(np.unique(np.round(cand, 12)), 16)


def _adi(eq: _Eq, tol: float, shifts: Any, max_solves: int, g: Any):
    solve = _Solver(eq)
    solve_m, W, mv, inv, residual = _cayley(eq, solve)
    if isinstance(shifts, str):
        shifts = _auto_shifts(shifts, eq, mv, inv, tol, g)
    norm_bb = np.linalg.norm(eq.B.T @ eq.B)
    cols, hist, used, j = [], [], [], 0
    while eq.solves + W.shape[1] <= max_solves:
        p = complex(shifts[j % len(shifts)])
        j += 1
        V = solve_m(p, W)
        if p.imag == 0:
            V = V.real
            W = W - 2.0 * p.real * V
            cols.append(np.sqrt(-2.0 * p.real) * V)
            used.append(p)
        else:  # the pair (p, conj p) in real arithmetic (Benner, Kürschner & Saak 2013)
            gam, d = 2.0 * np.sqrt(-p.real), p.real / p.imag
            step = V.real + d * V.imag
            W = W + gam**2 * step
            cols += [gam * step, gam * np.sqrt(d * d + 1.0) * V.imag]
            used += [p, p.conjugate()]
        hist.append(residual(W) / norm_bb)
        if not np.isfinite(hist[-1]) or hist[-1] <= tol or hist[-1] > 1e8:
            break
    conv = bool(hist) and hist[-1] <= tol
    msg = f"LR-ADI, {len(used)} shifts, relative residual {hist[-1] if hist else 1.0:.2e}"
    if not conv:
        msg += (" (diverging: A unstable or bad shifts)" if hist and not hist[-1] <= 1e8
                else f" > tol = {tol:g} (limit of {max_solves} solves reached)")
    Z = np.hstack(cols) if cols else np.zeros((eq.n, 0))
    return Z, {"converged": conv, "message": msg, "history": hist,
               "shifts": np.asarray(used, dtype=complex)}
