r"""Extremal eigenpairs of a symmetric operator by thick-restart Lanczos.

The method keeps an orthonormal basis :math:`V_m = [v_1, \dots, v_m]` of at most
``ncv`` vectors and the Krylov--Schur relation

.. math:: A V_m = V_m H_m + \beta_m v_{m+1} e_m^T, \qquad H_m = V_m^T A V_m,

where :math:`H_m` is symmetric: a diagonal block of kept Ritz values bordered by an
arrow (the couplings to the continuation vector) followed by a tridiagonal tail.
Each Lanczos step multiplies once, reorthogonalises against the whole stored basis
(classical Gram--Schmidt as matrix--vector products, a second pass whenever the
first one cancels more than half of the norm: the Daniel--Gragg--Kaufman--Stewart
test, so never a single unrefined pass through heavy cancellation) and appends one
row and column to :math:`H_m`.  With :math:`H_m = Y \Theta Y^T`, the Ritz pair
:math:`(\theta_i, x_i = V_m y_i)` has the residual

.. math:: \|A x_i - \theta_i x_i\| = |\beta_m|\,|e_m^T y_i|,

so convergence is checked on the host, in float64, from :math:`H_m` alone.  When
the basis is full, the method *restarts thickly* (Wu & Simon 2000; Stewart's
Krylov--Schur restart 2001): it keeps the wanted Ritz vectors plus the next best
ones, :math:`V_\ell \leftarrow V_m Y_{:, \mathrm{keep}}`, :math:`H_\ell =
\mathrm{diag}(\theta_\mathrm{keep})` with the arrow :math:`\beta_m Y_{m,
\mathrm{keep}}`, and continues Lanczos from :math:`v_{m+1}`.  This is
mathematically the implicitly restarted Lanczos of ARPACK with exact shifts, without
its bulge chasing.

With ``block_size = b > 1`` the same method runs on blocks (block Krylov--Schur, see
:mod:`spectra._block`; Golub & Underwood 1977, Zhou & Saad 2008): each step applies
``op.matmat`` to ``b`` orthonormal vectors, :math:`H_m` grows by ``b`` rows and
columns (band width ``b``), the residual term is :math:`X_+ R E_b^T` with
:math:`\|A x_i - \theta_i x_i\| = \|R\, y_{i,\mathrm{last}}\|` over the last ``b``
entries of :math:`y_i`, and a restart keeps the wanted plus extra Ritz vectors and
continues from the residual block.  A block of ``b`` random vectors sees up to ``b``
copies of a multiple eigenvalue (a single vector sees one), and block methods with a
random start have gap-robust bounds (Musco & Musco 2015).

References
----------
.. [1] C. Lanczos, "An iteration method for the solution of the eigenvalue problem
   of linear differential and integral operators", J. Res. Nat. Bur. Standards 45
   (1950).
.. [2] K. Wu and H. Simon, "Thick-restart Lanczos method for large symmetric
   eigenvalue problems", SIAM J. Matrix Anal. Appl. 22(2) (2000).
.. [3] G. W. Stewart, "A Krylov--Schur algorithm for large eigenproblems", SIAM J.
   Matrix Anal. Appl. 23(3) (2001).
.. [4] J. Kuczyński and H. Woźniakowski, "Estimating the largest eigenvalue by the
   power and Lanczos algorithms with a random start", SIAM J. Matrix Anal. Appl.
   13(4) (1992).
.. [5] J. W. Daniel, W. B. Gragg, L. Kaufman and G. W. Stewart, "Reorthogonalization
   and stable algorithms for updating the Gram--Schmidt QR factorization", Math.
   Comp. 30 (1976).
.. [6] G. H. Golub and R. Underwood, "The block Lanczos method for computing
   eigenvalues", Mathematical Software III (1977).
.. [7] Y. Zhou and Y. Saad, "Block Krylov--Schur method for large symmetric eigenvalue
   problems", Numer. Algorithms 47 (2008).
.. [8] C. Musco and C. Musco, "Randomized block Krylov methods for stronger and faster
   approximate singular value decomposition", NeurIPS (2015).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._block import BlockBasis, num_keep
from .backend import eps, from_numpy, to_numpy
from .operators import Operator, as_operator, require_symmetric
from .probes import as_rng, draw
from .results import EigResult, warn_not_converged

__all__ = ["eigsh"]

WHICH = ("LA", "SA", "LM", "BE")

#: Default basis size: ``max(2 k + 1, _NCV_MIN)``, clipped to n.  scipy uses 20; 40
#: cut the products by 3x for k = 10 on the 2-D Laplacian benchmark and changed little
#: elsewhere (benchmarks/spectra_eigsh.py).
_NCV_MIN = 40
#: Unconverged Ritz vectors kept at a restart, as a fraction of the free room
#: ``ncv - k`` (measured on the benchmarks: see benchmarks/spectra_eigsh.py).
_KEEP_FRACTION = 0.5
#: Default block basis size ``max(2 k + b, 20 (b + 1))``, rounded up to a multiple of b:
#: a block basis of m vectors has Krylov degree only m / b, and on the Laplacian
#: benchmark ncv = 42 -> 90 cut the products of b = 3 from 3879 to 1584.
_NCV_BLOCK = 20
#: DGKS threshold: a second Gram-Schmidt pass when the first leaves less than this
#: fraction of the norm.
_DGKS = 0.7071


# ---------------------------------------------------------------------------- input
def _check_int(value: Any, name: str, lo: int, hi: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}{hint}")
    return int(value)


def _check_args(n: int, k: Any, which: Any, tol: Any, ncv: Any, max_matvecs: Any, b: int):
    if n < 2:
        raise ValueError(f"eigsh needs n >= 2 (got n = {n}); use numpy.linalg.eigh")
    k = _check_int(k, "k", 1, n - 1,
                   f" (n = {n}); for k >= n compute all eigenvalues with numpy.linalg.eigh")
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)):
        raise TypeError(f"tol must be a positive float, got {tol!r}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be positive and finite, got {tol}")
    if b > 1:
        ncv, b = _block_ncv(n, k, ncv, b)
    elif ncv is None:
        ncv = min(n, max(2 * k + 1, _NCV_MIN))
    else:
        ncv = min(_check_int(ncv, "ncv", k + 1, max(n, k + 1)), n)
    if max_matvecs is None:
        max_matvecs = max(ncv, min(20 * n, 1000 * ncv))
    else:
        max_matvecs = _check_int(max_matvecs, "max_matvecs", ncv, 2**62,
                                 f" (at least ncv = {ncv}, one full basis)")
    return k, float(tol), ncv, max_matvecs, b


def _block_ncv(n: int, k: int, ncv: Any, b: int) -> tuple[int, int]:
    """Basis size for block size ``b``: a multiple of ``b`` with room for ``X_+``.

    Returns ``(ncv, b)``; ``(n, 1)`` when ``n < k + 2 b`` (no room for a block step and a
    residual block): the single-vector method with the full basis is then exact.
    """
    if ncv is None:
        ncv = max(2 * k + b, _NCV_BLOCK * (b + 1))
    else:
        ncv = _check_int(ncv, "ncv", k + b, max(n, k + b),
                         f" (at least k + block_size = {k + b})")
    ncv = min(-(-ncv // b) * b, (n - b) // b * b)
    return (ncv, b) if ncv >= k + b else (n, 1)


def _check_block_size(block_size: Any, n: int) -> int:
    if isinstance(block_size, str) or block_size is None:
        raise TypeError(f"block_size must be a positive integer, got {block_size!r}")
    return _check_int(block_size, "block_size", 1, max(n // 2, 1))


def _start_vector(op: Operator, v0: Any, g: Any):
    n = op.shape[0]
    if v0 is None:
        return draw("gaussian", n, 1, like=op, rng=g)[:, 0]
    if not hasattr(v0, "shape"):
        v0 = np.asarray(v0, dtype=float)
    if tuple(v0.shape) != (n,):
        raise ValueError(f"v0 must have shape ({n},), got {tuple(v0.shape)}")
    h = to_numpy(v0)
    if not np.all(np.isfinite(h)):
        raise ValueError("v0 contains NaN or Inf")
    if not np.any(h):
        raise ValueError("v0 is zero; a Lanczos start vector must be non-zero")
    if op.backend == "torch" and type(v0).__module__.startswith("torch"):
        return v0.to(device=op.device, dtype=op.dtype)
    return from_numpy(h, like=op)


def _start_block(op: Operator, v0: Any, g: Any, b: int):
    """Start block ``(n, b)``: Gaussian from ``rng``, with ``v0`` as its first column."""
    if v0 is None:
        return draw("gaussian", op.shape[0], b, like=op, rng=g)
    v = _start_vector(op, v0, g)
    X = draw("gaussian", op.shape[0], b, like=op, rng=g)
    X[:, 0] = v
    return X


# ---------------------------------------------------------------------------- selection
def _preference(theta: np.ndarray, which: str) -> np.ndarray:
    """Indices of ``theta`` ordered from most to least wanted."""
    if which == "LA":
        return np.argsort(-theta, kind="stable")
    if which == "SA":
        return np.argsort(theta, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(theta), kind="stable")
    up = np.argsort(theta, kind="stable")  # BE: top, bottom, top, ... without repeats
    lo, hi, out = 0, len(theta) - 1, []
    while lo <= hi:
        out.append(up[hi])
        hi -= 1
        if lo <= hi:
            out.append(up[lo])
            lo += 1
    return np.asarray(out, dtype=int)


def _output_order(theta: np.ndarray, which: str) -> np.ndarray:
    if which in ("LA", "LM"):
        key = -theta if which == "LA" else -np.abs(theta)
        return np.argsort(key, kind="stable")
    return np.argsort(theta, kind="stable")


# ---------------------------------------------------------------------------- the basis
class _Basis:
    """Orthonormal basis rows in the operator's namespace, projected matrix on the host."""

    def __init__(self, op: Operator, ncv: int, g: Any):
        self.op, self.xp, self.g = op, op.xp, g
        self.n, self.m = op.shape[0], ncv
        self.V = self.xp.zeros((ncv + 1, self.n), dtype=op.dtype, device=op.device)
        self.H = np.zeros((ncv, ncv))
        self.size = 0  # vectors in use (the continuation vector not counted)
        self.beta = 0.0  # norm of the residual after the last step
        self.anorm = 0.0  # running estimate of ||A||
        self.used = 0
        self.tiny = 10.0 * np.sqrt(self.n) * eps(op.dtype)
        self.numpy = op.backend == "numpy"
        self.tmp = np.empty(self.n, dtype=op.dtype) if self.numpy else None

    def _project(self, w, j: int):
        """Orthogonalise ``w`` against rows ``0..j``; return it with the coefficients."""
        if self.numpy:
            return self._project_numpy(w, j)
        xp, Vj = self.xp, self.V[: j + 1]
        w_norm = xp.linalg.vector_norm(w)
        h = Vj @ w
        w = w - Vj.T @ h
        hh = to_numpy(xp.concat([h, xp.reshape(w_norm, (1,))]))
        h_host, w2 = hh[:-1], hh[-1] ** 2
        if not np.all(np.isfinite(hh)):
            return w, h_host, np.nan
        if w2 - h_host @ h_host < _DGKS**2 * w2:  # cancellation: refine (DGKS)
            h2 = Vj @ w
            w = w - Vj.T @ h2
            h_host = h_host + to_numpy(h2)
        b = float(to_numpy(xp.linalg.vector_norm(w)))
        return w, h_host, b

    def _project_numpy(self, w, j: int):
        """The same in place on numpy arrays, local recurrence first.

        The known couplings ``H[:j, j]`` (``beta_{j-1}``, or the arrow after a restart)
        and ``alpha_j`` are removed first; one classical Gram-Schmidt pass against the
        whole basis then only meets rounding-level components, so the DGKS second pass
        is rarely needed ("twice is enough", counting the local step). No n-vector
        temporaries are allocated: in this environment every fresh large array costs
        page faults comparable to the arithmetic.
        """
        V, tmp = self.V, self.tmp
        if w.dtype != V.dtype or not w.flags.writeable or np.may_share_memory(w, V):
            w = np.array(w, dtype=V.dtype)
        col = self.H[:j, j]
        nz = np.flatnonzero(col)
        if nz.size == 1:
            np.multiply(V[nz[0]], col[nz[0]], out=tmp)
            w -= tmp
        elif nz.size > 1:
            np.matmul(col.astype(V.dtype), V[:j], out=tmp)
            w -= tmp
        alpha = float(np.dot(V[j], w))
        np.multiply(V[j], alpha, out=tmp)
        w -= tmp
        Vj = V[: j + 1]
        w2 = float(np.dot(w, w))
        h = Vj @ w
        np.matmul(h, Vj, out=tmp)
        w -= tmp
        h_host = h.astype(np.float64)
        h_host[j] += alpha
        if not (np.isfinite(w2) and np.isfinite(alpha) and np.all(np.isfinite(h_host))):
            return w, h_host, np.nan
        if w2 - h @ h < _DGKS**2 * w2:  # cancellation: refine (DGKS)
            h2 = Vj @ w
            np.matmul(h2, Vj, out=tmp)
            w -= tmp
            h_host = h_host + h2
        return w, h_host, float(np.sqrt(np.dot(w, w)))

    def set_start(self, v) -> None:
        self.V[0] = v / from_numpy(to_numpy(self.xp.linalg.vector_norm(v)), like=self.op)

    def step(self) -> bool:
        """One Lanczos step at row ``size``; return whether a breakdown occurred."""
        j = self.size
        w = self.op.matvec(self.V[j])
        self.used += 1
        w, h, b = self._project(w, j)
        if not (np.all(np.isfinite(h)) and np.isfinite(b)):
            raise ValueError(
                f"the operator's product returned NaN or Inf at eigsh product {self.used} "
                f"(Lanczos step {j + 1}); check the operator"
            )
        self.H[j, j] = h[j]
        self.anorm = max(self.anorm, float(np.hypot(np.hypot(h[j], b), self.beta)))
        self.size = j + 1
        if self.size >= self.n:  # the whole space: the Ritz pairs are exact
            self.beta = 0.0
            return False
        breakdown = b <= self.tiny * max(self.anorm, 1e-300)
        if breakdown:
            b = 0.0
            w = self._random_direction()
            self.V[self.size] = w
        elif self.numpy:
            np.multiply(w, 1.0 / b, out=self.V[self.size])
        else:
            self.V[self.size] = w / b
        self.beta = b
        if self.size < self.m:
            self.H[j, j + 1] = self.H[j + 1, j] = b
        return breakdown

    def _random_direction(self):
        """A random unit vector orthogonal to the basis (after an invariant subspace)."""
        j = self.size - 1
        for _ in range(5):
            z = draw("gaussian", self.n, 1, like=self.op, rng=self.g)[:, 0]
            z_norm = float(to_numpy(self.xp.linalg.vector_norm(z)))
            for _ in range(2):
                z = z - self.V[: j + 1].T @ (self.V[: j + 1] @ z)
            nz = float(to_numpy(self.xp.linalg.vector_norm(z)))
            if nz > 1e-3 * z_norm:
                return z / nz
        raise RuntimeError("could not draw a direction orthogonal to the basis")  # pragma: no cover

    def ritz(self):
        s = self.size
        theta, Y = np.linalg.eigh(self.H[:s, :s])
        self.anorm = max(self.anorm, float(np.max(np.abs(theta))))
        return theta, Y, np.abs(self.beta * Y[s - 1, :])

    def restart(self, theta, Y, keep: np.ndarray) -> None:
        """Thick restart: keep the Ritz vectors ``Y[:, keep]``, continue from the residual."""
        s, ell = self.size, len(keep)
        Yk = from_numpy(np.ascontiguousarray(Y[:, keep].T), like=self.op)
        self.V[:ell] = Yk @ self.V[:s]
        self.V[ell] = self.V[s]
        self.H[:] = 0.0
        self.H[np.arange(ell), np.arange(ell)] = theta[keep]
        self.H[ell, :ell] = self.H[:ell, ell] = self.beta * Y[s - 1, keep]
        self.size = ell

    def vectors(self, Y):
        return self.V[: self.size].T @ from_numpy(np.ascontiguousarray(Y), like=self.op)


# ---------------------------------------------------------------------------- driver
def _converged_mask(res, theta, tol, anorm, dtype, n_exhausted):
    if n_exhausted:
        return np.ones(len(theta), dtype=bool)
    floor = 8.0 * eps(dtype) * anorm
    return res <= np.maximum(tol * np.maximum(np.abs(theta), eps(dtype) ** (2 / 3) * anorm), floor)


def _num_keep(k: int, m: int) -> int:
    extra = int(round(_KEEP_FRACTION * (m - k)))
    return int(min(max(k + extra, k + 1), m - 1))


def eigsh(
    op: Any,
    k: int = 1,
    *,
    which: str = "LA",
    tol: float = 1e-6,
    max_matvecs: int | None = None,
    ncv: int | None = None,
    v0: Any = None,
    rng: Any = None,
    return_eigenvectors: bool = True,
    block_size: int = 1,
) -> EigResult:
    r"""Compute ``k`` extremal eigenpairs of a symmetric operator.

    Thick-restart Lanczos (Krylov--Schur) with full reorthogonalisation; see the
    module documentation for the method.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric operator (see :func:`~spectra.as_operator`); numpy or torch, CPU or
        CUDA.  Undeclared symmetry is tested once at random.
    k : int
        Number of eigenpairs, in ``[1, n - 1]``.  For all of them use
        :func:`numpy.linalg.eigh`.
    which : {"LA", "SA", "LM", "BE"}
        Largest algebraic, smallest algebraic, largest magnitude, or both ends
        (``k // 2`` from the bottom and the rest from the top, as ARPACK does).
    tol : float
        Relative residual tolerance.  A Ritz pair counts as converged when

        .. math:: \|A x_i - \theta_i x_i\| \le \mathrm{tol}\,
           \max(|\theta_i|,\ \epsilon^{2/3} \|A\|_{est}),

        the criterion of ARPACK with its absolute floor made relative to the running
        estimate :math:`\|A\|_{est} = \max |\theta|`; the eigenvalue error is then at
        most the residual, and about residual²/gap.  Residuals below
        :math:`8 \epsilon \|A\|_{est}` (rounding level of the working dtype) always
        count as converged.
    max_matvecs : int, optional
        Budget of products, at least ``ncv``.  Default
        ``max(ncv, min(20 n, 1000 ncv))``.
    ncv : int, optional
        Basis size, in ``[k + 1, n]`` (values above ``n`` are clipped).  Default
        ``max(2 k + 1, 40)`` clipped to ``n`` (scipy uses 20; see the benchmark).
        With ``ncv = n`` a single run of ``n`` steps gives the eigenpairs exactly.
    v0 : array, optional
        Start vector of shape ``(n,)``; default a Gaussian vector from ``rng`` (a
        random start avoids the orthogonal-start failure and gives the bounds of
        Kuczyński and Woźniakowski).
    rng : None, int, numpy or torch Generator
        Start vector and the fresh directions drawn after an invariant subspace.
    return_eigenvectors : bool
        If ``False``, :attr:`EigResult.eigenvectors` is ``None``.
    block_size : int
        Vectors per Lanczos step, in ``[1, n // 2]``; default 1 (single-vector).  With
        ``b > 1`` each step is one ``op.matmat`` on ``b`` vectors, eigenvalues of
        multiplicity up to ``b`` are found reliably, ``ncv`` must be at least
        ``k + b`` and is rounded up to a multiple of ``b`` (default
        ``max(2 k + b, 20 (b + 1))``), ``v0`` becomes the first column of the start
        block, and ``max_matvecs`` counts every column.  Raise it when multiple (or
        tightly clustered) eigenvalues are expected, or when a block product is much
        cheaper per vector than ``b`` matvecs (batched Hessian-vector products,
        GPUs).  For cheap sparse products on a CPU, ``b = 1`` needs about half the
        products and a quarter of the time (benchmarks/spectra_eigsh.py: thin-block
        orthogonalisation over a larger basis dominates there).  When ``n < k + 2 b`` the
        single-vector method with the full basis is used (exact in ``n`` products).

    Returns
    -------
    EigResult
        Eigenvalues ordered largest first (``"LA"``, ``"LM"`` by magnitude), smallest
        first (``"SA"``) or ascending (``"BE"``); eigenvectors ``(n, k)`` in the
        operator's namespace and device; residual norms from the Lanczos relation;
        products and restarts used.  When the budget runs out the best Ritz pairs are
        returned with ``converged=False`` and a :class:`~spectra.ConvergenceWarning`.

    Raises
    ------
    ValueError
        ``k`` outside ``[1, n - 1]``, unknown ``which``, ``tol`` not positive and
        finite, ``ncv``/``max_matvecs`` out of range, a non-symmetric operator, a
        zero or misshaped ``v0``, or a product returning NaN/Inf (the product is
        named).
    TypeError
        Non-integer ``k``, ``ncv`` or ``max_matvecs``.

    Notes
    -----
    After a breakdown (an invariant subspace, :math:`\beta_j \approx 0`) the method
    continues with a random vector orthogonal to the basis, and does not test
    convergence before the end of that basis cycle, so that eigenvalues of
    multiplicity above one, invisible to a single Krylov sequence, are looked for.
    Without a breakdown, further copies of a multiple eigenvalue enter only through
    rounding, as in every single-vector Krylov method (ARPACK included), and may be
    missed: on a square-grid Laplacian (exact double eigenvalues) ``k=3`` returns
    :math:`\lambda_1, \lambda_2, \lambda_4`.  Use ``block_size >= multiplicity``.

    Examples
    --------
    >>> import numpy as np
    >>> from spectra import eigsh
    >>> A = np.diag(np.arange(1.0, 101.0))
    >>> res = eigsh(A, k=3, tol=1e-10, rng=0)
    >>> np.round(res.eigenvalues, 8).tolist(), res.converged
    ([100.0, 99.0, 98.0], True)
    """
    op = as_operator(op)
    require_symmetric(op, "eigsh")
    n = op.shape[0]
    b = _check_block_size(block_size, n)
    k, tol, ncv, max_matvecs, b = _check_args(n, k, which, tol, ncv, max_matvecs, b)
    g = as_rng(rng)
    if b == 1:
        B = _Basis(op, ncv, g)
        B.set_start(_start_vector(op, v0, g))
        keep = _num_keep(k, ncv)
    else:
        B = BlockBasis(op, ncv, b, g)
        B.set_start(_start_block(op, v0, g, b))
        keep = num_keep(k, ncv, b, _num_keep(k, ncv))
    restarts, hold = 0, False
    while True:
        hold = B.step() or hold
        full = B.size >= n
        if B.size < ncv and not full and (hold or B.size < k):
            continue
        theta, Y, res = B.ritz()
        order = _preference(theta, which)
        ok = _converged_mask(res, theta, tol, B.anorm, op.dtype, full)
        done = bool(np.all(ok[order[:k]])) and not (hold and B.size < ncv)
        if done or full or B.used + b > max_matvecs:
            break
        if B.size >= ncv:
            B.restart(theta, Y, order[:keep])
            restarts, hold = restarts + 1, False
    return _finish(B, theta, Y, res, order, k, which, done or full, restarts,
                   return_eigenvectors, tol)


def _finish(B, theta, Y, res, order, k, which, converged, restarts, vectors, tol):
    sel = order[:k]
    sel = sel[_output_order(theta[sel], which)]
    ok = _converged_mask(res, theta, tol, B.anorm, B.op.dtype, B.size >= B.n)
    if converged:
        msg = (f"converged: {k} eigenpairs to relative residual tol={tol:g} in "
               f"{B.used} products and {restarts} restarts")
    else:
        msg = (f"not converged: {int(np.sum(ok[sel]))} of {k} eigenpairs met tol={tol:g} "
               f"within max_matvecs={B.used} products ({restarts} restarts); largest "
               f"residual {float(np.max(res[sel])):.3g}. Raise max_matvecs or ncv, or "
               "loosen tol")
        warn_not_converged("eigsh " + msg, stacklevel=4)
    X = B.vectors(Y[:, sel]) if vectors else None
    return EigResult(
        eigenvalues=theta[sel].copy(),
        eigenvectors=X,
        residual_norms=res[sel].copy(),
        num_matvecs=B.used,
        converged=bool(converged),
        message=msg,
        num_restarts=restarts,
    )
