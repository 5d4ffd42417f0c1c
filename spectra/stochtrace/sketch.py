r"""The XTrace / XDiag sketch: ``A Omega = QR``, ``H = Q^TAQ`` and ``W = Q^T\Omega``.

:class:`_Sketch` keeps the test vectors :math:`\Omega` and the basis of
:math:`A\Omega` in preallocated ``(kmax, n)`` buffers in the operator's dtype and
device, and the ``k x k`` projections on the host in float64. The first round of test
vectors (all of them without ``rtol``) is orthonormalised by Cholesky QR on float64
Gram matrices (:func:`_cholqr`): a few passes over the whole sketch, each a
matrix-matrix product, instead of a Householder QR per chunk with block Gram-Schmidt
against everything before it. Later rounds (``rtol``) extend the basis chunk by chunk
(:func:`~spectra.stochtrace.core.extend_basis`).

**Cholesky QR of a round** (``Y = A Omega``, stored as rows). With the Gram matrix
:math:`G = Y^TY` summed in float64 from float32 partial products over pieces of
:data:`PIECE` rows, :math:`R_1 = \operatorname{chol}(G)` and :math:`B = YR_1^{-1}`
(formed in place, piece by piece), :math:`B` is orthonormal up to about
:math:`u\,\kappa(Y)^2` (``u`` the relative error of ``G``, about ``1e-7`` in
float32). A second step on :math:`G_B = B^TB` (computed in the same pass, together with
:math:`B^T\Omega`) removes that error: :math:`R_2 = \operatorname{chol}(G_B)`,
:math:`Q = BR_2^{-1}` and :math:`R = R_2R_1` (CholeskyQR2, accurate to working
precision for :math:`\kappa(Y) \lesssim u^{-1/2}`). When nothing follows the round (no
further test vectors, no ``AQ`` kept) the second step stays implicit: the products are
taken with ``B``, and :math:`H = R_2^{-T}(B^TAB)R_2^{-1}`, :math:`W = R_2^{-T}B^T\Omega`
are corrected on the ``k x k`` level, which saves one pass over the sketch. A Gram
matrix whose Cholesky factor fails or has a condition number above
:math:`1/(8\sqrt{\epsilon})` (362 in float32, i.e. ``Y`` too close to rank deficient
for the squared condition number) falls back to a Householder QR of the round
(:func:`~spectra.stochtrace.core._qr`), which keeps the exactness of XTrace on
low-rank operators.

The round's products are copied into the preallocated basis buffer and factored
there. Keeping the operator's product blocks as the basis instead (no copy, no fresh
buffer to fault in) was measured slower: the passes then gather and scatter the blocks
piece by piece (3.17 against 3.04 CPU seconds outside the products for 40 products on
an 11.18-million float32 diagonal operator, one thread).

``d_i = \omega_i^TA\omega_i`` is read off the factors: :math:`A\omega_i = y_i = Qr_i`,
so :math:`\omega_i^Ty_i = w_i^Tr_i` (no pass over ``Omega`` and ``Y``).

Memory: ``2 kmax`` ``n``-vectors (``3 kmax`` with ``Z = AQ`` for XDiag) plus one chunk
of products, all in the operator's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

from ..backend import GEMV_CHUNK, coldots, eps, is_torch
from .core import _Ctx, _qr, _sketch_chunk, extend_basis, project

#: Entries per piece of the fused passes over the sketch's rows on a CPU (float32
#: products of the piece, added in float64): the pieces of :func:`spectra.backend.rowdots`.
PIECE = GEMV_CHUNK
#: Entries per piece on a device: few kernel launches, a workspace of ``k`` such pieces.
DEVICE_PIECE = 1 << 20


def _steps(X: Any) -> int:
    """Piece length for the passes over the rows of ``X``."""
    return DEVICE_PIECE if is_torch(X) and X.device.type != "cpu" else PIECE


def _acc(X: Any, shape: tuple) -> Any:
    """A float64 accumulator of ``shape`` in ``X``'s framework and device."""
    if is_torch(X):
        import torch

        return torch.zeros(shape, dtype=torch.float64, device=X.device)
    return np.zeros(shape)


def _host(a: Any) -> np.ndarray:
    return a.cpu().numpy() if is_torch(a) else a


def gram(X: Any) -> np.ndarray:
    """``X X^T`` for rows ``X`` ``(k, n)``: float32 pieces summed in float64, on the host."""
    n, k = X.shape[1], X.shape[0]
    if X.dtype.itemsize >= 8:
        return _host(X @ X.T).astype(np.float64)
    acc, step = _acc(X, (k, k)), _steps(X)
    for lo in range(0, n, step):
        P = X[:, lo:lo + step]
        acc += P @ P.T
    return _host(acc)


def transform(X: Any, T: Any, Om: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``X <- T X`` in place, piece by piece; returns ``X X^T`` and ``X Om^T`` after it.

    ``X`` and ``Om`` are rows ``(k, n)``; ``T`` is ``(k, k)`` in their dtype and device.
    The Gram matrices are float64 sums of the pieces' products (host arrays); ``Om`` may
    be ``None``.
    """
    n, k = X.shape[1], X.shape[0]
    g, w = _acc(X, (k, k)), None if Om is None else _acc(X, (k, Om.shape[0]))
    step = _steps(X)
    for lo in range(0, n, step):
        P = X[:, lo:lo + step]
        B = T @ P
        g += B @ B.T
        if w is not None:
            w += B @ Om[:, lo:lo + step].T
        P[...] = B
    return _host(g), None if w is None else _host(w)


def _chol(G: np.ndarray, dtype: Any) -> np.ndarray | None:
    """Upper Cholesky factor of the Gram matrix ``G``, or ``None`` if it is unusable.

    Unusable: not positive definite in float64, or a condition number above
    ``1 / (8 sqrt(eps))`` of the sketch's dtype (the squared condition number would eat
    the Gram matrix's accuracy).
    """
    try:
        R = sla.cholesky(0.5 * (G + G.T), lower=False, check_finite=True)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not np.all(np.isfinite(R)) or np.linalg.cond(R) > 0.125 / np.sqrt(eps(dtype)):
        return None
    return R


def _same(a: Any, b: Any) -> bool:
    """Whether two arrays of one framework start at the same memory (an in-place result)."""
    if is_torch(a):
        return a.data_ptr() == b.data_ptr()
    return bool(np.shares_memory(a, b))


def _inv_t(ctx: _Ctx, R: np.ndarray) -> Any:
    """``R^{-T}`` of an upper triangular ``R``, in the operator's dtype and device."""
    return ctx.dev(sla.solve_triangular(R, np.eye(R.shape[0]), lower=False).T)


class _Sketch:
    r"""The XTrace / XDiag sketch, preallocated for ``kmax`` test vectors, grown in place.

    Keeps :math:`\Omega` and the basis of :math:`A\Omega` (rows of ``(kmax, n)``
    buffers; :math:`Z = AQ` too for XDiag) and the ``k x k`` projections
    :math:`H = Q^TAQ`, ``R``, :math:`W = Q^T\Omega`, :math:`\omega_i^TA\omega_i` and
    :math:`\|\omega_i\|^2` in float64 on the host (:math:`T = Z^T\Omega = Q^TA\Omega = R`
    for symmetric ``A``). The first round is factored by Cholesky QR (module notes),
    later rounds in chunks of at most ``c`` columns by block Gram-Schmidt and
    Householder QR (:func:`~spectra.stochtrace.core.extend_basis`), extending ``H``
    without forming ``AQ`` again (``A`` is symmetric, so :math:`Q^TZ_{new}` gives both
    off-diagonal blocks).

    Memory: ``2 kmax`` ``n``-vectors for XTrace (``3 kmax`` with ``Z`` for XDiag) plus
    one chunk of products (and, in later rounds, its QR factor), in the operator's
    dtype.
    """

    def __init__(self, ctx: _Ctx, kmax: int, keep_z: bool) -> None:
        from ..probes import _empty

        op, n = ctx.op, ctx.n
        self.ctx, self.kmax, self.k = ctx, kmax, 0
        self.chunk = _sketch_chunk(kmax, ctx.block)
        new = lambda: _empty(op.backend, kmax, n, op.dtype, op.device)  # noqa: E731
        self._om, self._q = new(), new()
        self._z = new() if keep_z else None
        self.H, self.W, self.R = (np.zeros((kmax, kmax)) for _ in range(3))
        self._w_k = -1
        self.d, self.o2 = np.zeros(kmax), np.zeros(kmax)
        #: How the last round was factored ("cholqr" or "householder"; tests read it).
        self.path = ""

    @property
    def Om(self):
        return self._om[: self.k].T

    @property
    def Q(self):
        """The basis (``n x k``; after XTrace's only round ``B = Q R_2``, module notes)."""
        return self._q[: self.k].T

    @property
    def Z(self):
        return self._z[: self.k].T

    def grow(self, k: int) -> None:
        if self.k == 0 and k > 0:
            self._first(k)
        while self.k < k:
            self._add(min(self.chunk, k - self.k))

    # -------------------------------------------------------------- the first round

    def _first(self, k: int) -> None:
        """Test vectors ``0..k``: products, Cholesky QR (or Householder), ``H`` and ``W``."""
        ctx, c = self.ctx, self.chunk
        Om, Y = self._om[:k], self._q[:k]
        ctx.draw_into(Om)
        for a in range(0, k, c):
            Y[a:a + c] = ctx.apply(Om[a:a + c].T).T
        # ||omega_i||^2 enters the improved residual scaling only (Rademacher: n exactly)
        self.o2[:k] = coldots(Om.T, Om.T) if ctx.improved else float(ctx.n)
        R1 = _chol(gram(Y), ctx.op.dtype)
        R2 = WB = None
        pre = np.eye(k)  # Y = (rows now in Y) @ pre
        if R1 is not None:
            GB, WB = transform(Y, _inv_t(ctx, R1), Om)
            pre = R1
            R2 = _chol(GB, ctx.op.dtype)
        implicit = False
        if R2 is None:  # Householder on the round (Y, or B = Y R1^-1: the same range)
            Qe, Rb = _qr(ctx.xp, Y.T)
            if not _same(Qe, Y.T):
                Y[...] = Qe.T
            self.R[:k, :k] = ctx.host(Rb) @ pre
            self.path, self._w_k = "householder", -1
        else:
            implicit = self._z is None and k == self.kmax
            if not implicit:  # Q = B R2^-1 in place
                transform(Y, _inv_t(ctx, R2), None)
            self.R[:k, :k] = R2 @ R1
            self.W[:k, :k] = sla.solve_triangular(R2, WB, trans="T", lower=False)
            self.path, self._w_k = "cholqr", k
        self._products(0, k, R2 if implicit else None)
        if self._w_k != k:
            self.W[:k, :k] = project(ctx, Y, Om.T)
            self._w_k = k
        self.d[:k] = np.sum(self.W[:k, :k] * self.R[:k, :k], axis=0)
        self.k = k

    def _products(self, k0: int, k1: int, R2: np.ndarray | None) -> None:
        """``Z = A Q`` for basis rows ``k0..k1`` in chunks, and columns ``k0..k1`` of ``H``.

        With ``R2`` the rows hold ``B = Q R2`` (implicit second Cholesky QR step):
        ``H = R2^{-T} (B^T A B) R2^{-1}``.
        """
        ctx, c = self.ctx, self.chunk
        H = np.zeros((k1, k1))
        for a in range(k0, k1, c):
            b = min(k1, a + c)
            Ze = ctx.apply(self._q[a:b].T)
            if self._z is not None:
                self._z[a:b] = Ze.T
            Hn = project(ctx, self._q[:b], Ze)  # (b, b - a): columns a:b of H
            H[:b, a:b] = Hn
            H[a:b, :a] = Hn[:a].T
            del Ze
        if R2 is not None:
            H = sla.solve_triangular(R2, H, trans="T", lower=False)
            H = sla.solve_triangular(R2, H.T, trans="T", lower=False)
        self.H[k0:k1, k0:k1] = 0.5 * (H[k0:, k0:] + H[k0:, k0:].T)

    # -------------------------------------------------------------- later rounds

    def _add(self, c: int) -> None:
        ctx = self.ctx
        k0, k1 = self.k, self.k + c
        Om = ctx.draw_into(self._om[k0:k1])
        Y = ctx.apply(Om)
        self.d[k0:k1], self.o2[k0:k1] = coldots(Om, Y), coldots(Om, Om)
        Q0 = self._q[:k0]  # rows: the basis vectors so far
        Qe, Rtop, Rb = extend_basis(ctx, Q0, Y, Om)
        del Y
        self.R[:k0, k0:k1] = Rtop
        self.R[k0:k1, k0:k1] = Rb
        self._q[k0:k1] = Qe.T
        Ze = ctx.apply(self._q[k0:k1].T)
        if self._z is not None:
            self._z[k0:k1] = Ze.T
        Hn = project(ctx, self._q[:k1], Ze)  # (k1, c): columns k0:k1 of H
        self.H[:k1, k0:k1] = Hn
        self.H[k0:k1, :k0] = Hn[:k0].T
        blk = self.H[k0:k1, k0:k1]
        self.H[k0:k1, k0:k1] = 0.5 * (blk + blk.T)
        self.k = k1

    def small(self) -> dict[str, np.ndarray]:
        r"""The ``k x k`` projections used by XTrace, on the host in float64.

        ``W = Q^T\Omega`` is one ``k x n x k`` product after a later round (the first
        forms it in its Cholesky pass); ``T = Z^T\Omega = Q^TA\Omega = R`` for the
        symmetric operators XTrace takes, so it is not formed.
        """
        k = self.k
        if self._w_k != k:
            self.W[:k, :k] = project(self.ctx, self._q[:k], self._om[:k].T)
            self._w_k = k
        R = self.R[:k, :k]
        return {"H": self.H[:k, :k], "W": self.W[:k, :k], "T": R, "d": self.d[:k], "R": R,
                "o2": self.o2[:k]}
