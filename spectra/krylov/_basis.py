r"""The single-vector basis of :func:`spectra.eigsh` (thick-restart Lanczos, ``block_size=1``).

:class:`Basis` holds the orthonormal Lanczos vectors (rows, in the operator's namespace
and device) and the projected matrix :math:`H_m = V_m^T A V_m` (host, float64); a step
multiplies once and reorthogonalises against the whole basis (the local recurrence, then
classical Gram--Schmidt refined by the Daniel--Gragg--Kaufman--Stewart test; every
coefficient and norm accumulated in float64, see :func:`~spectra.backend.rowdots`), or
with partial reorthogonalisation only when :class:`~spectra.krylov._partial.Omega` says
so, and a thick restart keeps chosen Ritz vectors (see :mod:`spectra.krylov.eigsh`).
:func:`random_direction` is shared with the block basis of :mod:`spectra.krylov._block`.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from ..backend import eps, from_numpy, rowdots, to_numpy
from ..operators import Operator, wrapped_matrix
from ..probes import draw
from ..results import NonFiniteError
from ._partial import Omega, gram_restart, orthonormal_columns
from ._scale import column_norms, product_scale, real_product

#: DGKS threshold: a second Gram-Schmidt pass when the first leaves less than this
#: fraction of the norm.
DGKS = 0.7071


def sqnorm(w: Any) -> float:
    """``||w||^2`` as a host float64 number: :func:`~spectra.backend.rowdots` of ``w`` with itself.

    Measured ``2e-8`` relative error at ``n = 11.2`` million in float32 on a vector with
    a few large entries, against ``1.5e-5`` in one float32 call.
    """
    return float(rowdots(w[None], w)[0])


def random_direction(op: Operator, g: Any, *bases: Any) -> Any:
    """A random unit vector orthogonal to the rows of every array in ``bases``.

    Gaussian draws from ``g``, projected out twice; up to five draws.
    """
    n = op.shape[0]
    for _ in range(5):
        z = draw("gaussian", n, 1, like=op, rng=g)[:, 0]
        z_norm = math.sqrt(sqnorm(z))
        for _ in range(2):
            parts = [B.T @ from_numpy(rowdots(B, z), like=op) for B in bases]
            for part in parts:
                z = z - part
        nz = math.sqrt(sqnorm(z))
        if nz > 1e-3 * z_norm:
            return z / nz
    raise RuntimeError("could not draw a direction orthogonal to the basis")  # pragma: no cover


#: Dimension up to which a step's projection is one compiled call (no numpy dispatch).
LEAN_N = 4096
#: Columns per chunk of the in-place basis rotation at a thick restart.
_CHUNK = 8192
#: The products ``A v_j`` of the basis vectors are stored (``ncv`` more n-vectors, so
#: that true residuals of Ritz pairs need no further product) when ``ncv * n`` is at
#: most this many numbers (32 MiB in float64); above it, the residuals of the returned
#: pairs cost ``k`` products.  Above the cap the memory doubles for a handful of
#: products (an operator of n ~ 1e7, a model's Hessian), and on large sparse problems
#: rotating the stored products at each restart cost a fifth of the run (Poisson
#: 40^3, k = 10: 1.51 s against 1.22 s of CPU for 10 fewer products out of 590).
STORE_LIMIT = 2**22


def rotate_rows(V: Any, Yk: Any, s: int) -> None:
    """``V[:ell] = Yk @ V[:s]`` in place, by column chunks (no ``ell x n`` temporary).

    ``Yk`` is ``(ell, s)`` with ``ell <= s``; each chunk's product is formed before it
    overwrites its own columns, so the rotation needs ``ell x _CHUNK`` numbers of scratch.
    """
    ell, n = Yk.shape[0], V.shape[1]
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        V[:ell, lo:hi] = Yk @ V[:s, lo:hi]


class Basis:
    """Orthonormal basis rows in the operator's namespace, projected matrix on the host."""

    def __init__(self, op: Operator, ncv: int, g: Any, lock: Any = None,
                 partial: bool = False):
        self.op, self.xp, self.g, self.b = op, op.xp, g, 1
        self.n, self.m = op.shape[0], ncv
        #: locked vectors (rows): the run lives on their orthogonal complement
        self.L = None if lock is None else self._rows(lock)
        self.dim = self.n - (0 if lock is None else int(lock.shape[1]))
        self.V = self._alloc(ncv + 1)
        #: the (scaled) products ``inv A v_j`` of rows ``0..size-1``, before deflation,
        #: rotated with the basis at a restart; ``None`` above :data:`STORE_LIMIT`
        self.W = self._alloc(ncv) if ncv * self.n <= STORE_LIMIT and not partial else None
        #: Simon's orthogonality estimates (partial reorthogonalisation), else ``None``
        self.omega = Omega(ncv, op.dtype) if partial else None
        #: bound on ``||W - inv A V[:size]||_2`` from the rounding of the rotations
        self.drift = 0.0
        self.H = np.zeros((ncv, ncv))
        self.size = 0  # vectors in use (the continuation vector not counted)
        self.beta = 0.0  # norm of the residual after the last step
        self.anorm = 0.0  # running estimate of ||A||
        self.used = 0
        #: breakdown threshold: the rounding of a norm, float64 sums of chunks (rowdots)
        self.tiny = 10.0 * np.sqrt(min(self.n, 2**15)) * eps(op.dtype)
        self.numpy = op.backend == "numpy"
        self.tmp = np.empty(self.n, dtype=op.dtype) if self.numpy else None
        #: power of two applied to every product (spectra.krylov._scale): the basis runs
        #: on ``inv * A``; H, beta, anorm are in those units (divide by inv for A's)
        self.inv: float | None = None
        self.lean = None
        if self.numpy and self.n <= LEAN_N and lock is None and not partial:
            from .._numba.krylov import project_small

            self.lean = project_small

    def _alloc(self, rows: int):
        """An uninitialised ``(rows, n)`` array in the operator's dtype and device.

        Every row is written before it is read, so rows a run never reaches are never
        touched (no page of them becomes resident on a CPU).
        """
        return self.xp.empty((rows, self.n), dtype=self.op.dtype, device=self.op.device)

    def release(self) -> None:
        """Drop the basis and its products (the run is over; the memory is freed)."""
        self.V = self.W = None

    def drop_products(self) -> None:
        """Stop storing the products (their memory is freed; residuals then cost k)."""
        self.W = None

    def _rows(self, X):
        """The columns of ``X`` as C-contiguous rows (a copy)."""
        if self.op.backend == "numpy":
            return np.ascontiguousarray(X.T)
        return X.T.contiguous()

    def _axpy(self, w, x, a: float) -> None:
        """``w -= a x`` in place (numpy through the scratch vector: no temporary)."""
        if self.numpy:
            np.multiply(x, a, out=self.tmp)
            w -= self.tmp
        else:
            w.add_(x, alpha=-a)

    def _gemv(self, w, M, c: np.ndarray) -> None:
        """``w -= M^T c`` in place for rows ``M`` and host coefficients ``c``."""
        if self.numpy:
            np.matmul(c.astype(M.dtype), M, out=self.tmp)
            w -= self.tmp
        else:
            w.addmv_(M.T, from_numpy(c, like=self.op), alpha=-1.0)

    def _deflate(self, w):
        """Remove the components of ``w`` along the locked rows (one pass), in place.

        Called on every product and again after its orthogonalisation against the
        basis, so each step meets the locked rows twice (CGS2 across the step): a
        second pass inside each call doubled the cost of a deflated check's step (at
        ``n = 11.2`` million and 5 locked rows, 20 passes of n-vectors, about one
        curvature product) for components already at rounding level.
        """
        L = self.L
        if L is not None:
            self._gemv(w, L, rowdots(L, w))
        return w

    def product(self, v, j: int | None = None):
        """``inv * (A v)``: one counted product, scaled by the run's power of two.

        With ``j`` and stored products, the scaled product is also kept in ``W[j]``
        (before the deflation of a locked run: the residuals are those on ``A``).  The
        result is owned by the basis (see :meth:`_own`) and updated in place from here.
        """
        w = self.op.matvec(v)
        self.used += 1
        if getattr(getattr(w, "dtype", None), "kind", None) != "f" or not self.numpy:
            w = real_product(w, f"eigsh product {self.used}")
        if self.inv is None:
            self.inv = product_scale(w, self.xp, f"eigsh product {self.used} (Lanczos step 1)")
        w = self._own(w)
        if self.inv != 1.0:
            w *= self.inv
        if j is not None and self.W is not None:
            self.W[j] = w
        return self._deflate(w)

    def _own(self, w):
        """``w`` as a writable array of the basis dtype (and device) aliasing no basis row."""
        V = self.V
        if self.numpy:
            if w.dtype != V.dtype or not w.flags.writeable or np.may_share_memory(w, V):
                w = np.array(w, dtype=V.dtype)
            return w
        w = w.detach()
        if (w.dtype != V.dtype or w.device != V.device or not w.is_contiguous()
                or w.untyped_storage().data_ptr() == V.untyped_storage().data_ptr()):
            w = w.to(dtype=V.dtype, device=V.device, copy=True).contiguous()
        return w

    def _project(self, w, j: int):
        """Orthogonalise ``w`` against rows ``0..j`` in place: ``(w, h, ||w||)``.

        ``h`` are the coefficients (host float64).  The known couplings ``H[:j, j]``
        (``beta_{j-1}``, or the arrow after a restart)
        and ``alpha_j`` are removed first; one classical Gram-Schmidt pass against the
        whole basis then only meets rounding-level components, so the DGKS second pass
        (when the pass leaves less than :data:`DGKS` of the norm) is rarely needed
        ("twice is enough", counting the local step).  The coefficients and norms are
        float64 sums of chunked products in the basis dtype
        (:func:`~spectra.backend.rowdots`); the updates are in place in the basis dtype
        (one BLAS-2 ``gemv`` per pass), with no n-vector temporary: at model scale every
        fresh n-vector costs page faults comparable to the arithmetic.
        """
        V = self.V
        col = self.H[:j, j]
        if self.lean:  # one compiled call (w is owned: see product)
            h, b = self.lean(V, j, w, col, DGKS)
            return w, h, float(b)
        alpha = self._local(w, j, col)
        if self.omega is not None:
            return self._partial(w, j, alpha)
        return self._against_basis(w, j, alpha)

    def _local(self, w, j: int, col: np.ndarray) -> float:
        """Remove the known couplings ``H[:j, j]`` and then ``alpha_j v_j``; ``alpha_j``."""
        V = self.V
        nz = np.flatnonzero(col)
        if nz.size == 1:
            self._axpy(w, V[nz[0]], float(col[nz[0]]))
        elif nz.size > 1:
            self._gemv(w, V[:j], col)
        alpha = float(rowdots(V[j:j + 1], w)[0])
        self._axpy(w, V[j], alpha)
        return alpha

    def _against_basis(self, w, j: int, alpha: float, w2: float | None = None):
        """Classical Gram-Schmidt against rows ``0..j`` (DGKS refined), then deflation.

        ``w2``: ``||w||^2`` when the caller has it, and has deflated ``w`` already (the
        locked rows are then not met a third time in the step).
        """
        Vj = V = self.V[: j + 1]
        deflate = w2 is None
        w2 = sqnorm(w) if w2 is None else w2
        h = rowdots(Vj, w)
        self._gemv(w, Vj, h)
        if not (math.isfinite(w2) and math.isfinite(alpha) and np.all(np.isfinite(h))):
            return w, h, np.nan
        if w2 - h @ h < DGKS**2 * w2:  # cancellation: refine (DGKS)
            h2 = rowdots(V, w)
            self._gemv(w, V, h2)
            h = h + h2
        h[j] += alpha
        if deflate:
            w = self._deflate(w)  # locked directions grow through the recurrence otherwise
        return w, h, math.sqrt(sqnorm(w))

    def _partial(self, w, j: int, alpha: float):
        """The local recurrence, and the whole basis only when :class:`Omega` says so.

        Without it the new vector's estimates are Simon's recurrence (host, ``O(j^2)``);
        with it (estimate above ``sqrt(eps)``, or the step after one that was) the
        coefficients beyond ``alpha_j`` are left out of ``H`` as in the full path, and
        kept in :attr:`Omega.K` for the restart.  The locked rows are met twice per
        step, as in the full path (after the product, after the local recurrence).
        """
        om = self.omega
        w = self._deflate(w)
        b = math.sqrt(sqnorm(w))
        h = np.zeros(j + 1)
        h[j] = alpha
        if not (math.isfinite(b) and math.isfinite(alpha)):
            return w, h, np.nan
        self.H[j, j] = alpha
        row = om.predict(self.H, j, b, max(self.anorm, math.hypot(alpha, b, self.beta)))
        if not om.due(row):
            om.accept(j, row)
            return w, h, b
        om.reorthogonalised(j)
        w, h, b = self._against_basis(w, j, alpha, b * b)
        om.K[:j, j] = h[:j]  # the removed components: the relation's exact coefficients
        return w, h, b

    def set_start(self, v) -> None:
        """Normalise ``v`` (scale-safe, then to float64-summed accuracy) into row 0."""
        nrm = column_norms(v[:, None], self.xp)
        self.V[0] = v / from_numpy(nrm, like=self.op)[0]
        self.V[0] *= 1.0 / math.sqrt(sqnorm(self.V[0]))
        if self.omega is not None:
            self.omega.restart(0)

    def step(self) -> bool:
        """One Lanczos step at row ``size``; return whether a breakdown occurred."""
        j = self.size
        w = self.product(self.V[j], j)
        w, h, b = self._project(w, j)
        if not (math.isfinite(b) and (self.lean or np.all(np.isfinite(h)))):
            raise NonFiniteError(
                f"the operator's product returned NaN or Inf at eigsh product {self.used} "
                f"(Lanczos step {j + 1}); check the operator"
            )
        self.H[j, j] = h[j]
        self.anorm = max(self.anorm, math.hypot(float(h[j]), b, self.beta))
        self.size = j + 1
        if self.size >= self.dim:  # the whole space: the Ritz pairs are exact
            self.beta = 0.0
            return False
        breakdown = b <= self.tiny * max(self.anorm, 1e-300)
        if breakdown:
            b = 0.0
            w = self._random_direction()
            self.V[self.size] = w
            if self.omega is not None:
                self.omega.reset(self.size)
        elif self.numpy:
            np.multiply(w, 1.0 / b, out=self.V[self.size])
        else:
            self.xp.mul(w, 1.0 / b, out=self.V[self.size])
        self.beta = b
        if self.size < self.m:
            self.H[j, j + 1] = self.H[j + 1, j] = b
        return breakdown

    def advance(self, target: int) -> bool:
        """Steps until ``size == target`` (or the whole space); whether one broke down."""
        while self.size < min(target, self.dim):
            if self.step():
                return True
        return False

    def _random_direction(self):
        """A random unit vector orthogonal to the basis (after an invariant subspace)."""
        extra = () if self.L is None else (self.L,)
        return random_direction(self.op, self.g, self.V[: self.size], *extra)

    def ritz(self):
        s = self.size
        theta, Y = np.linalg.eigh(self.H[:s, :s])
        self.anorm = max(self.anorm, float(np.max(np.abs(theta))))
        return theta, Y, np.abs(self.beta * Y[s - 1, :])

    def restart(self, theta, Y, keep: np.ndarray) -> None:
        """Thick restart: keep the Ritz vectors ``Y[:, keep]``, continue from the residual."""
        if self.omega is not None:
            gram_restart(self, keep)
            self.omega.restart(self.size)
            return
        s, ell = self.size, len(keep)
        Yk = from_numpy(np.ascontiguousarray(Y[:, keep].T), like=self.op)
        rotate_rows(self.V, Yk, s)
        if self.W is not None:
            # |fl(Yk W) - Yk W| <= gamma_s |Yk| |W| entrywise, so row i is off by at most
            # gamma_s sum_j |Yk_ij| ||W_j||; the old error is rotated by Yk (norm 1)
            wn = self._row_norms(self.W[:s])
            rows = np.abs(Y[:, keep].T) @ wn
            self.drift += s * eps(self.op.dtype) * float(np.sqrt(rows @ rows))
            rotate_rows(self.W, Yk, s)
        self.V[ell] = self.V[s]
        self.H[:] = 0.0
        self.H[np.arange(ell), np.arange(ell)] = theta[keep]
        self.H[ell, :ell] = self.H[:ell, ell] = self.beta * Y[s - 1, keep]
        self.size = ell

    def _row_norms(self, M) -> np.ndarray:
        """Host float64 norms of the rows of ``M`` (scaled units: no overflow), no copy."""
        if self.numpy:
            return np.sqrt(np.einsum("ij,ij->i", M, M, dtype=np.float64))
        return to_numpy(self.xp.linalg.vector_norm(M, axis=1)).astype(np.float64)

    def vectors(self, Y):
        """The Ritz vectors ``V^T Y`` as ``(n, k)`` columns.

        For torch stored column by column (the transpose of ``Y^T V``, row-major):
        each column is contiguous, so a curvature operator's per-parameter views of a
        column need no copy, and locking them for the check for copies copies nothing.
        """
        Yd = from_numpy(np.ascontiguousarray(Y), like=self.op)
        X = self.V[: self.size].T @ Yd if self.numpy else (Yd.T @ self.V[: self.size]).T
        return X if self.omega is None else orthonormal_columns(X)

    def stored_residuals(self, X, Y, theta: np.ndarray) -> np.ndarray | None:
        r"""``||inv A x_i - theta_i x_i||`` of ``X = V Y`` from the stored products.

        :math:`A x_i = A V y_i = W y_i`: the products were computed (this is the true
        residual, not the Lanczos estimate), up to :attr:`drift`.  ``None`` without
        stored products.
        """
        if self.W is None:
            return None
        AX = self.W[: self.size].T @ from_numpy(np.ascontiguousarray(Y), like=self.op)
        AX -= X * from_numpy(np.asarray(theta, dtype=np.float64), like=self.op)[None, :]
        return column_norms(AX, self.xp)


#: Work arrays of finished lean runs, per thread (see :func:`take_rows`).
_POOL = threading.local()
#: Arrays kept per thread (a basis and its products, for the run and its check).
_POOL_SIZE = 2


def take_rows(rows: int, n: int, dtype: Any) -> np.ndarray:
    """A ``(rows, n)`` work array, reused from this thread's pool when one fits.

    Small runs are dominated by fixed costs: a fresh array above glibc's mmap threshold
    (128 KiB, e.g. a 41 x 600 basis) costs a page fault per 4 KiB page on first touch,
    63 us for 41 x 600 here, more than a dozen Lanczos steps of pyamg's ``bar``. The
    contents are not cleared (every row is written before it is read).
    """
    pool = _POOL.__dict__.setdefault("arrays", [])
    for i, M in enumerate(pool):
        if M.dtype == dtype and M.shape[1] == n and M.shape[0] >= rows:
            return pool.pop(i)[:rows]
    return np.empty((rows, n), dtype=dtype)


def give_rows(M: np.ndarray) -> None:
    """Return a work array of :func:`take_rows` to this thread's pool (largest kept)."""
    base = M if M.base is None else M.base
    pool = _POOL.__dict__.setdefault("arrays", [])
    pool.append(base)
    pool.sort(key=lambda a: -a.size)
    del pool[_POOL_SIZE:]


def explicit_parts(op: Operator) -> tuple | None:
    """``(indptr, indices, data, dense)`` of a small numpy CSR or dense operator, or ``None``.

    The lean path (:class:`LeanBasis`) takes operators made by :func:`spectra.as_operator`
    from a numpy array or a scipy sparse matrix (stored as CSR) with ``n <= LEAN_N``;
    every other operator runs through its products.
    """
    M = wrapped_matrix(op)
    if op.backend != "numpy" or M is op or op.shape[0] > LEAN_N or M.dtype != op.dtype:
        return None
    empty = np.zeros(0, dtype=np.int32)
    if isinstance(M, np.ndarray):
        return empty, empty, np.zeros(0, dtype=M.dtype), np.ascontiguousarray(M)
    if getattr(M, "format", None) == "csr":
        return M.indptr, M.indices, M.data, np.zeros((0, 0), dtype=M.dtype)
    return None


class LeanBasis(Basis):
    """:class:`Basis` on an explicit small matrix: steps run in compiled calls.

    :meth:`advance` runs the steps up to a target size in one call of
    :func:`spectra._numba.trlan.lean_steps` (product, stored product, deflation,
    projection, normalisation); products are counted on the operator as by its
    ``matvec``.  Restarts, Ritz values and the random direction after a breakdown are
    those of :class:`Basis`.
    """

    def __init__(self, op: Operator, ncv: int, g: Any, parts: tuple, lock: Any = None):
        super().__init__(op, ncv, g, lock)
        from .._numba.trlan import lean_steps

        self._steps, self.parts, self.lean = lean_steps, parts, None
        self._none = np.zeros((0, self.n), dtype=op.dtype)

    def _alloc(self, rows: int):
        return take_rows(rows, self.n, self.op.dtype)

    def release(self) -> None:
        for M in (self.V, self.W):
            if M is not None:
                give_rows(M)
        super().release()

    def drop_products(self) -> None:
        if self.W is not None:
            give_rows(self.W)
        super().drop_products()

    def step(self) -> bool:
        return self.advance(self.size + 1)

    def advance(self, target: int) -> bool:
        from .._numba.trlan import BREAKDOWN, NONFINITE

        j0 = self.size
        target = min(target, self.dim)
        if j0 >= target:
            return False
        st = np.array([self.inv or 0.0, self.anorm, self.beta, self.tiny])
        W = self._none if self.W is None else self.W
        L = self._none if self.L is None else self.L
        status, size = self._steps(*self.parts, self.V, W, self.H, L, j0, target, self.dim,
                                   st, DGKS)
        self.used += size - j0
        self.op.num_matvecs += size - j0
        if status == NONFINITE:
            raise NonFiniteError(
                f"the operator's product returned NaN or Inf at eigsh product {self.used} "
                f"(Lanczos step {size}); check the operator")
        self.inv, self.anorm, self.beta, self.size = float(st[0]), float(st[1]), float(st[2]), size
        if status == BREAKDOWN:
            self.V[size] = self._random_direction()
            return True
        return False


def make_basis(op: Operator, ncv: int, g: Any, lock: Any = None,
               reorth: str = "full") -> Basis:
    """:class:`LeanBasis` for a small explicit numpy matrix, else :class:`Basis`.

    ``reorth``: ``"full"``, ``"partial"`` (a :class:`Basis` with :class:`Omega`), or
    ``"auto"``: partial when the products are not stored (``ncv n`` above
    :data:`STORE_LIMIT`) and the operator is not a small explicit matrix (the compiled
    lean path), i.e. where the passes over the basis dominate the steps.
    """
    parts = explicit_parts(op)
    if reorth == "auto":
        reorth = "partial" if parts is None and ncv * op.shape[0] > STORE_LIMIT else "full"
    if reorth == "partial":
        return Basis(op, ncv, g, lock, partial=True)
    return Basis(op, ncv, g, lock) if parts is None else LeanBasis(op, ncv, g, parts, lock)
