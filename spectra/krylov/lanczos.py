r"""Lanczos tridiagonalisation, batched over several starting vectors.

For a symmetric ``A`` and start ``q_1 = v / ||v||`` the recurrence

.. math:: \beta_{j} q_{j+1} = A q_j - \alpha_j q_j - \beta_{j-1} q_{j-1}

builds an orthonormal basis ``Q_k`` of the Krylov space and the tridiagonal
``T_k = Q_k^T A Q_k`` with diagonal ``alpha`` and off-diagonal ``beta``.
In floating point the basis loses orthogonality as Ritz values converge (Paige);
``reorth="full"`` restores it with one pass of classical Gram-Schmidt against the
stored basis after the three-term step, and a second pass for the start vectors whose
norm the first one cut below ``1/sqrt(2)`` (the DGKS test, "twice is enough").
``reorth="none"`` keeps only three vectors: its Ritz values may repeat ("ghosts"),
but Gauss quadrature built from it stays accurate (Greenbaum 1989), which is what
stochastic Lanczos quadrature needs.

References
----------
.. [1] C. C. Paige, "Accuracy and effectiveness of the Lanczos algorithm for the
   symmetric eigenproblem", Linear Algebra Appl. 34 (1980).
.. [2] A. Greenbaum, "Behavior of slightly perturbed Lanczos and conjugate-gradient
   recurrences", Linear Algebra Appl. 113 (1989).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import coldots, eps, from_numpy, rowdots, to_numpy
from ..operators import Operator, as_operator, require_symmetric
from ..probes import as_rng, draw
from ..results import LanczosResult, NonFiniteError
from ..validation import check_choice, check_int
from ._basis import DGKS
from ._scale import product_scale, real_array, real_product, unit_columns

__all__ = ["lanczos", "check_steps"]

_REORTH = ("full", "none")


def check_steps(num_steps: Any, n: int, name: str = "num_steps") -> int:
    """Validate a Lanczos step count against the dimension ``n``: an integer in ``[1, n]``.

    Raises
    ------
    TypeError
        For a non-integer.
    ValueError
        Outside ``[1, n]``.
    """
    return check_int(num_steps, name, low=1, high=n, hint=f" (n = {n}, the dimension)")


def _start_block(op: Operator, v0: Any, rng: Any, locked: Any = None):
    n = op.shape[0]
    if v0 is None:
        V = draw("rademacher", n, 1, like=op, rng=as_rng(rng))
    else:
        # an array's entries share its dtype: checking one row avoids a float64 copy
        real_array(v0[:1] if getattr(v0, "ndim", 0) and hasattr(v0, "dtype") else v0, "v0")
        V = v0 if hasattr(v0, "shape") else np.asarray(v0, dtype=float)
        if isinstance(V, np.ndarray) and op.backend == "torch":
            V = from_numpy(V, like=op)
        if V.ndim == 1:
            V = V[:, None]
        if V.ndim != 2 or V.shape[0] != n:
            raise ValueError(f"v0 must have shape ({n},) or ({n}, p), got {tuple(v0.shape)}")
        V = V.to(op.dtype) if op.backend == "torch" else np.asarray(V, dtype=op.dtype)
    if locked is not None:
        V = V - locked.T @ from_numpy(rowdots(locked, V), like=V)
    Q, norms = unit_columns(V, op.xp)
    if not np.all(np.isfinite(norms)):
        raise ValueError("v0 contains NaN or Inf")
    if np.any(norms == 0):
        raise ValueError("v0 has a zero column; a Lanczos start vector must be non-zero")
    return Q, norms


def _check_locked(locked: Any, op: Operator) -> Any:
    """``locked`` as ``(c, n)`` rows in the operator's namespace, dtype and device."""
    n = op.shape[0]
    if locked is None:
        return None
    if not hasattr(locked, "shape") or locked.ndim != 2 or locked.shape[1] != n:
        raise ValueError(f"locked must be a (c, {n}) array of orthonormal rows, got "
                         f"{getattr(locked, 'shape', type(locked).__name__)}")
    if op.backend == "torch":
        locked = from_numpy(locked, like=op) if isinstance(locked, np.ndarray) else locked
        return locked.detach().to(dtype=op.dtype, device=op.device).contiguous()
    return np.ascontiguousarray(to_numpy(locked), dtype=op.dtype)


def _lock(W: Any, locked: Any, op: Operator) -> None:
    r"""In place :math:`W \leftarrow (I - U U^T) W` for the rows ``U^T = locked`` ``(c, n)``.

    The dots :math:`U^T W` are accumulated in float64 (:func:`~spectra.backend.rowdots`),
    the update is one BLAS product into ``W`` (torch: ``addmm_`` on the probe-major
    rows; numpy: one ``n x p`` temporary).
    """
    C = rowdots(locked, W)
    if op.backend == "torch":
        W.T.addmm_(from_numpy(C.T.copy(), like=op), locked, alpha=-1.0)
    else:
        W -= locked.T @ C.astype(W.dtype)


def _shares(a: Any, b: Any) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _own_block(W: Any, Q: Any, Q_prev: Any, op: Operator) -> Any:
    """The product ``W`` as a block the run may update in place.

    ``W`` itself when it has the run's layout (numpy: C-contiguous; torch: probe-major,
    each column contiguous), the operator's dtype, is writable and aliases no Lanczos
    block (nor, for torch, an autograd graph); a copy in that layout otherwise.
    """
    if op.backend == "torch":
        if (W.dtype != op.dtype or not W.T.is_contiguous() or W.requires_grad
                or _shares(W, Q) or _shares(W, Q_prev)):
            W = _probe_major(W.detach().to(op.dtype), copy=True)
        return W
    W = np.asarray(W)
    if (W.dtype != Q.dtype or not W.flags.c_contiguous or not W.flags.writeable
            or np.may_share_memory(W, Q) or np.may_share_memory(W, Q_prev)):
        W = np.array(W, dtype=Q.dtype, order="C")
    return W


def _probe_major(V: Any, copy: bool = False) -> Any:
    """An ``(n, p)`` tensor stored probe by probe (``V.T`` contiguous), a copy if needed."""
    if V.T.is_contiguous() and not copy:
        return V
    out = V.new_empty((V.shape[1], V.shape[0])).T
    return out.copy_(V)


def _cpu_rows(op: Operator, W: Any) -> bool:
    """Whether the block is a CPU torch one in float32/64 (the row kernels' case)."""
    return (op.backend == "torch" and W.device.type == "cpu"
            and str(W.dtype) in ("torch.float32", "torch.float64"))


def _three_term(op: Operator, W: Any, Q: Any, Q_prev: Any, b_prev: np.ndarray, inv: float,
                locked: Any) -> tuple[np.ndarray, np.ndarray]:
    """Scale, project and three-term step of ``W`` in place; ``alpha`` and ``||W||^2``."""
    if _cpu_rows(op, W):
        from .._numba.lanczos_rows import step_dots, step_update

        Wn, Qn, Pn = W.T.numpy(), Q.T.numpy(), Q_prev.T.numpy()
        Un = locked.numpy() if locked is not None else np.empty((0, Wn.shape[1]), Wn.dtype)
        a, C = step_dots(Wn, Qn, Un)
        a *= inv  # a power of two: exact
        C *= inv
        return a, step_update(Wn, inv, Qn, a, Pn, b_prev, Un, C)
    if inv != 1.0:  # a power of two: exact
        W *= inv
    if locked is not None:
        _lock(W, locked, op)
    if op.backend == "numpy":
        from .._numba.krylov import column_dots, three_term_update

        a = column_dots(Q, W)
        return a, three_term_update(W, Q, Q_prev, a, b_prev)
    a = coldots(Q, W)
    W.addcmul_(Q, from_numpy(a, like=op)[None, :], value=-1.0)
    if np.any(b_prev):
        W.addcmul_(Q_prev, from_numpy(b_prev, like=op)[None, :], value=-1.0)
    return a, coldots(W, W)


def _recurrence(op: Operator, W: Any, Q: Any, Q_prev: Any, b_prev: np.ndarray, Bj: Any,
                inv: float = 1.0, locked: Any = None):
    """Orthogonalise the owned block ``W = A Q`` in place (recurrence, reorthogonalisation).

    ``W`` is first multiplied by the run's power of two ``inv`` and, for a run on a
    complement, projected against the ``locked`` rows (:func:`_lock`). CPU torch blocks
    do that and the three-term step in two fused passes
    (:mod:`spectra._numba.lanczos_rows`: float64 dots, then the update with its sums of
    squares).

    The three-term recurrence removes the known couplings ``alpha_j``, ``beta_{j-1}``
    first; with the stored basis ``Bj`` ``(p, j + 1, n)`` one pass of classical
    Gram-Schmidt against the whole basis follows (no copy of the basis), and a second
    pass only for the probes where the first left less than
    :data:`~spectra.krylov._basis.DGKS` ``= 1/sqrt(2)`` of the norm ("twice is enough",
    the DGKS test of the eigsh basis, :meth:`~spectra.krylov._basis.Basis._project`):
    the full pass then meets only rounding-level components, and a pass reads the whole
    basis (243 ms for 40 float32 vectors at ``n = 11.2`` million,
    benchmarks/results/hessian_scale_trace.md). The test uses ``||w||^2 - ||c||^2``
    (no further read of the basis). Returns ``W``, the host array ``[alpha; ||W||]`` of
    shape ``(2, p)``, accumulated in float64, and the number of second passes taken (a
    diagnostic for tests/spectra/test_lanczos_reorth.py). numpy blocks take the fused
    Numba passes, CPU torch blocks (stored probe by probe) the fused row kernels;
    other torch blocks in-place updates (``addcmul_``, ``addmm_``) with float64 column
    dots (:func:`~spectra.backend.coldots`, one contiguous column at a time).
    """
    a, ss = _three_term(op, W, Q, Q_prev, b_prev, inv, locked)
    again = 0
    if Bj is not None:
        numpy = op.backend == "numpy"
        Wt = W.T if numpy else W.T[:, :, None]  # probe i: a view of column i
        for i in range(W.shape[1]):
            for _ in range(2):  # classical Gram-Schmidt, a second pass after cancellation
                # in the basis' dtype: no float64 copy of a float32 basis
                c = Bj[i] @ Wt[i]
                if numpy:
                    Wt[i] -= c @ Bj[i]
                    c = c.astype(np.float64)
                else:
                    Wt[i].addmm_(Bj[i].T, c, alpha=-1.0)
                    c = to_numpy(c[:, 0]).astype(np.float64)
                a[i] += c[-1]
                if not ss[i] - c @ c < DGKS**2 * ss[i]:
                    break
                ss[i] -= c @ c
                again += 1
    if Bj is not None:
        if op.backend == "numpy":
            from .._numba.krylov import column_dots

            ss = column_dots(W, W)
        else:
            ss = coldots(W, W)
    return W, np.stack([a, np.sqrt(ss)]), again


def lanczos(
    op: Any,
    num_steps: int,
    *,
    v0: Any = None,
    reorth: str = "full",
    rng: Any = None,
    keep_basis: bool = False,
    locked: Any = None,
) -> LanczosResult:
    r"""Run ``num_steps`` Lanczos steps from one or several start vectors.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric operator (see :func:`~spectra.as_operator`).
    num_steps : int
        Steps per start vector, in ``[1, n]``; each costs one product per vector.
    v0 : array, optional
        Start vector ``(n,)`` or block ``(n, p)`` (one run per column). Default: one
        Rademacher vector drawn from ``rng``.
    reorth : {"full", "none"}
        Full reorthogonalisation (classical Gram-Schmidt against the stored basis, a
        second pass when the first cancels, DGKS; stores the basis) or
        none (three-term recurrence only, ``O(n)`` memory per vector).
    rng : None, int, numpy or torch Generator
        Used only when ``v0`` is not given (see :mod:`spectra.probes`).
    keep_basis : bool
        With ``reorth="none"``: keep the Lanczos blocks, each the ``(n, p)`` block of one
        step, without copying them (the products' own memory: no second basis to fill
        and fault in). ``basis`` is then the list of the blocks. They lose
        orthogonality as Ritz values converge, but Ritz vectors formed from them still
        satisfy the Lanczos relation (Paige 1980), which
        :func:`spectra.quadrature.slq_measure`'s pilot uses
        (:func:`~spectra.krylov.ritz.converged_pairs`). Ignored with ``"full"``, whose
        basis is always stored.
    locked : array, optional
        Orthonormal rows ``U^T`` ``(c, n)`` (in the operator's framework): the run is on
        the complement, :math:`(I - U U^T) A (I - U U^T)`. The start block is projected
        once and every product after it (:func:`_lock`); the Lanczos vectors stay in the
        complement, so projecting the inputs of the products as well would change
        nothing but rounding.

    Returns
    -------
    LanczosResult
        Tridiagonals (float64, host), the basis for ``reorth="full"``, steps taken and
        a breakdown flag per start vector. A breakdown (``beta_j`` at rounding level:
        the Krylov space is invariant) ends that vector's run cleanly; its ``T`` is then
        exact for the spectral measure of the start vector.

    Raises
    ------
    ValueError
        Non-symmetric operator, ``num_steps`` outside ``[1, n]``, a zero or
        non-finite start vector, or a product returning NaN/Inf (the step is named).
    TypeError
        A ``v0`` that is not an array of real numbers, or a complex/integer product.

    Notes
    -----
    *Scale.* The products are multiplied by one power of two chosen from the first one
    (exact) and ``alpha``, ``beta`` divided by it at the end, and start vectors are
    normalised with scaled norms: the results for :math:`cA` are :math:`c` times those
    for :math:`A` wherever :math:`cA`'s entries are normal numbers, and the breakdown
    test :math:`\beta_j \le 10\sqrt n\,\epsilon\,\|A\|_{est}` is relative.

    *Memory.* With ``reorth="full"`` the peak is about ``p (num_steps + 4)`` n-vectors in
    the operator's dtype: the basis ``(p, num_steps, n)`` allocated once and filled in
    place, the current and previous blocks, the product block and one scratch vector
    (reorthogonalisation runs probe by probe); ``reorth="none"`` keeps about ``4 p``
    (tests/spectra/test_krylov_memory.py). Every step updates the product block in
    place and it becomes the next Lanczos block (no fresh ``n x p`` array per step,
    unless the product aliases a Lanczos block or an autograd graph, or comes in
    another layout, when it is copied once): numpy blocks by the fused Numba passes,
    torch blocks (stored probe by probe, as the probes are drawn and as batched
    products return them) by ``addcmul_`` / ``addmm_`` / ``mul_``; ``alpha`` and
    ``beta`` are accumulated in float64 (tests/spectra/test_lanczos_inplace.py).

    Examples
    --------
    >>> import numpy as np
    >>> from spectra import lanczos
    >>> A = np.diag(np.arange(1.0, 6.0))
    >>> res = lanczos(A, 5, rng=0)
    >>> np.allclose(np.linalg.eigvalsh(res.tridiagonal()), np.arange(1.0, 6.0))
    True
    """
    op = as_operator(op)
    require_symmetric(op, "lanczos")
    n = op.shape[0]
    k = check_steps(num_steps, n)
    check_choice(reorth, "reorth", _REORTH)
    xp = op.xp
    locked = _check_locked(locked, op)
    Q, start_norms = _start_block(op, v0, rng, locked)
    p = Q.shape[1]
    full = reorth == "full"
    blocks: list | None = [] if keep_basis and not full else None

    alpha = np.zeros((p, k))
    beta = np.zeros((p, k))
    steps = np.full(p, k, dtype=int)
    breakdown = np.zeros(p, dtype=bool)
    active = np.ones(p, dtype=bool)
    anorm = np.zeros(p)
    tiny = 10.0 * np.sqrt(n) * eps(op.dtype)

    # every row is written before it is read: no zero fill (pages are touched as filled)
    basis = xp.empty((p, k, n), dtype=op.dtype, device=op.device) if full else None
    if op.backend == "numpy":  # the fused Numba kernels: C-contiguous blocks
        from .._numba.krylov import scale_columns

        Q = np.ascontiguousarray(Q)
        Q_prev = np.zeros_like(Q)
    else:  # stored probe by probe: each column contiguous, as the probes are drawn
        Q = _probe_major(Q)
        Q_prev = _probe_major(xp.zeros_like(Q))
    b_prev = np.zeros(p)
    used, inv = 0, None
    for j in range(k):
        if full:
            basis[:, j, :] = Q.T
        elif blocks is not None:  # never written again: W is the next block
            blocks.append(Q)
        W = real_product(op.matmat(Q), f"Lanczos step {j + 1}")
        used += int(active.sum())
        if inv is None:  # one exact power-of-two scale for the run (spectra.krylov._scale)
            inv = product_scale(W, op.xp, f"Lanczos step 1 (product {op.num_matvecs})")
        W = _own_block(W, Q, Q_prev, op)
        W, ab, _ = _recurrence(op, W, Q, Q_prev, b_prev, basis[:, : j + 1, :] if full else None,
                               inv, locked)
        a_h, b_h = ab[0], ab[1]
        if not np.all(np.isfinite(ab[:, active])):
            raise NonFiniteError(
                f"the operator's product returned NaN or Inf at Lanczos step {j + 1} "
                f"(product {op.num_matvecs}); check the operator"
            )
        alpha[active, j] = a_h[active]
        anorm = np.maximum(anorm, np.sqrt(a_h**2 + b_h**2 + b_prev**2))
        newly = active & (b_h <= tiny * np.maximum(anorm, 1e-300))
        if j == n - 1:  # the Krylov space is the whole space
            newly = active.copy()
        beta[active & ~newly, j] = b_h[active & ~newly]
        if np.any(newly):
            steps[newly] = j + 1
            breakdown[newly] = j + 1 < k
            active &= ~newly
            if not active.any():
                break
        scale = np.where(active, 1.0 / np.where(active, b_h, 1.0), 0.0)
        if op.backend == "numpy":
            scale_columns(W, scale)
        else:
            W.mul_(from_numpy(scale, like=op)[None, :])
        Q_prev, Q = Q, W
        b_prev = np.where(active, b_h, 0.0)

    if full:
        basis = basis[:, : int(steps.max()), :]
    elif blocks is not None:
        basis = blocks[: int(steps.max())]
    return LanczosResult(
        alpha=alpha / inv,
        beta=beta / inv,
        steps=steps,
        basis=basis,
        num_matvecs=used,
        breakdown=breakdown,
        reorth=reorth,
        start_norms=start_norms,
    )
