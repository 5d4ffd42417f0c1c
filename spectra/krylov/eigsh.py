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
row and column to :math:`H_m`.  With partial reorthogonalisation (Simon 1984,
``reorth="partial"``, the default where the passes over the basis dominate) a step
runs only the local recurrence while Simon's estimates of the lost orthogonality stay
below :math:`\sqrt\epsilon`, and a thick restart works on the orthonormalised span of
the semi-orthogonal basis (:mod:`spectra.krylov._partial`).  With
:math:`H_m = Y \Theta Y^T`, the Ritz pair
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
:mod:`spectra.krylov._block`; Golub & Underwood 1977, Zhou & Saad 2008): each step applies
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
.. [9] H. D. Simon, "The Lanczos algorithm with partial reorthogonalization", Math.
   Comp. 42 (1984).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import dtype_name, eps, from_numpy, tolerance
from ..operators import Operator, as_operator, dense_matrix, require_symmetric
from ..probes import as_rng, draw
from ..results import EigResult, warn_not_converged
from ..validation import check_bool, check_choice, check_float, check_int
from ._basis import make_basis
from ._block import BlockBasis, num_keep
from ._partial import REORTH
from ._run import Copies, Run, converged_mask
from ._scale import product_scale, real_array, unit_columns

__all__ = ["WHICH", "eigsh"]

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
#: Basis of the deflated check for missed copies: ``min(ncv, max(20, 2 k))`` vectors
#: (tests/spectra/test_krylov_copies.py; each check costs at least this many products).
_CHECK_STEPS = 20


# ---------------------------------------------------------------------------- input
def _check_args(n: int, k: Any, which: Any, tol: Any) -> tuple[int, float]:
    """``k`` in ``[1, n]``, ``which`` one of :data:`WHICH`, ``tol`` positive and finite."""
    k = check_int(k, "k", low=1, high=n, hint=f" (n = {n}: at most all n eigenpairs)")
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    return k, check_float(tol, "tol", low=0.0, low_open=True)


def _check_budget(n: int, k: int, ncv: Any, max_matvecs: Any, b: int) -> tuple[int, int, int]:
    """Basis size, product budget and block size of the iterative method (``k < n``)."""
    if b > 1:
        ncv, b = _block_ncv(n, k, ncv, b)
    elif ncv is None:
        ncv = min(n, max(2 * k + 1, _NCV_MIN))
    else:
        ncv = min(check_int(ncv, "ncv", low=k + 1, high=max(n, k + 1)), n)
    if max_matvecs is None:
        max_matvecs = max(ncv, min(20 * n, 1000 * ncv))
    else:
        max_matvecs = check_int(max_matvecs, "max_matvecs", low=ncv,
                                hint=f" (at least ncv = {ncv}, one full basis)")
    return ncv, max_matvecs, b


def _block_ncv(n: int, k: int, ncv: Any, b: int) -> tuple[int, int]:
    """Basis size for block size ``b``: a multiple of ``b`` with room for ``X_+``.

    Returns ``(ncv, b)``; ``(n, 1)`` when ``n < k + 2 b`` (no room for a block step and a
    residual block): the single-vector method with the full basis is then exact.
    """
    if ncv is None:
        ncv = max(2 * k + b, _NCV_BLOCK * (b + 1))
    else:
        ncv = check_int(ncv, "ncv", low=k + b, high=max(n, k + b),
                        hint=f" (at least k + block_size = {k + b})")
    ncv = min(-(-ncv // b) * b, (n - b) // b * b)
    return (ncv, b) if ncv >= k + b else (n, 1)


def _start_vector(op: Operator, v0: Any, g: Any):
    """The start vector: Gaussian from ``g``, or ``v0`` checked (real, finite, non-zero)."""
    n = op.shape[0]
    if v0 is None:
        return draw("gaussian", n, 1, like=op, rng=g)[:, 0]
    h = check_start_vector(v0, n)
    if op.backend == "torch" and type(v0).__module__.startswith("torch"):
        v = v0.to(device=op.device, dtype=op.dtype)
    else:
        v = from_numpy(h, like=op)
    return unit_columns(v[:, None], op.xp)[0][:, 0]


def check_start_vector(v0: Any, n: int) -> np.ndarray:
    """``v0`` as a host float64 vector of shape ``(n,)``, or a clear error.

    Raises
    ------
    TypeError
        Not an array of real numbers (a string, complex or object entries).
    ValueError
        Wrong shape, NaN/Inf entries or all zeros.
    """
    h = real_array(v0, "v0")
    if h.shape != (n,):
        raise ValueError(f"v0 must have shape ({n},), got {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("v0 contains NaN or Inf")
    if not np.any(h):
        raise ValueError("v0 is zero; a Lanczos start vector must be non-zero")
    return h


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


# ---------------------------------------------------------------------------- driver
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
    check_copies: bool = True,
    reorth: str = "auto",
) -> EigResult:
    r"""Compute ``k`` extremal eigenpairs of a symmetric operator.

    Thick-restart Lanczos (Krylov--Schur) with full or partial reorthogonalisation;
    see the module documentation for the method.

    Parameters
    ----------
    op : Operator or matrix-like
        Symmetric operator (see :func:`~spectra.as_operator`); numpy or torch, CPU or
        CUDA.  Undeclared symmetry is tested once at random.
    k : int
        Number of eigenpairs, in ``[1, n]``.  With ``k = n`` (every ``n = 1`` operator
        included) the eigenpairs come from a dense solve instead (see Notes).
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
        count as converged.  The test runs first on the Lanczos estimates
        :math:`|\beta_m e_m^T y_i|`; before ``converged=True`` is returned, the true
        residuals of the returned pairs must pass it too (otherwise the iteration
        continues with a tighter internal tolerance, or the result says not converged).
        They are computed from the stored products :math:`W = A V_m` of the basis
        (:math:`A x_i = W y_i`, no further product), counted converged only when they
        pass with a rigorous bound on the rounding of the rotations of :math:`W` added;
        when that bound leaves the verdict open, or the products are not stored (see
        Notes, *Memory*), from ``k`` fresh products (counted in ``num_matvecs``).
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
    check_copies : bool
        With ``block_size=1``, after convergence, look for copies of multiple
        eigenvalues that a single Krylov sequence cannot see: Lanczos on the complement
        of the converged vectors from a fresh random vector (basis
        ``min(ncv, max(20, 2 k))``), until a Ritz value beats the worst wanted one (the
        copy is then converged and swapped in, and the check repeats), or the
        random-start bound of Kuczyński and Woźniakowski puts the chance of a miss
        below 1%, or the check has used ``max(2 m, used / 4)`` products.  In the last
        case, when the check's best Ritz value lies within a relative gap of 1e-3 of
        the wanted set, the message says copies may be missing and a
        :class:`~spectra.ConvergenceWarning` names the ``block_size`` to use.  The
        bound is first looked at after 4 steps, then at the step count where the
        current gap lets it pass (the gap only shrinks), so a clean check stops as
        soon as it is decided; it costs at least 4 products, usually 20-40.  The
        bound counts only the steps of the check's first basis cycle (the Krylov space
        of its random start; its restarts keep both extreme Ritz vectors, so they can
        find a copy but do not lower the bound).  ``False`` skips it (ARPACK and PRIMME
        make no such check).
    reorth : {"auto", "full", "partial"}
        How the basis is kept orthogonal (``block_size=1``).  ``"full"``: every step
        is orthogonalised against the whole stored basis.  ``"partial"`` (Simon
        1984): only the local recurrence, while Simon's recurrence for estimates
        :math:`\omega_{jk}` of :math:`v_j^T v_k` stays below :math:`\sqrt\epsilon` of
        the basis dtype; when it exceeds it, that vector and the next are
        orthogonalised against the whole basis.  The basis is then semi-orthogonal,
        which keeps the Ritz values accurate to :math:`O(\epsilon\|A\|)`; each thick
        restart re-orthonormalises it (from its float64-summed Gram matrix) and
        restarts on the projection in that orthonormal basis, and the returned Ritz
        vectors are orthonormalised (Cholesky QR) before their explicit residuals are
        computed, so ``converged`` and ``residual_norms`` are those of the returned
        orthonormal vectors.  The products are not stored in this mode (the explicit
        check costs ``k`` products).  ``"auto"`` (default): ``"partial"`` when
        ``ncv * n`` exceeds ``2**22`` (the products are not stored there anyway) and
        the operator is not a small explicit matrix (whose compiled path below keeps
        ``"full"``), else ``"full"``.  With ``block_size > 1`` the block basis is
        always fully reorthogonalised (``"auto"``; ``"partial"`` is an error).  The
        locked vectors of the check for copies are removed at every step in both
        modes.  See :doc:`/theory/lanczos`, *Partial reorthogonalisation*.

    Returns
    -------
    EigResult
        Eigenvalues ordered largest first (``"LA"``, ``"LM"`` by magnitude), smallest
        first (``"SA"``) or ascending (``"BE"``); eigenvectors ``(n, k)`` in the
        operator's namespace and device; residual norms
        :math:`\|A x_i - \theta_i x_i\|` computed explicitly from products (from the
        Lanczos relation only when the basis spans the whole space, or when the budget
        left no room for the ``k`` fresh products that an undecided check needs);
        products (the checks included) and restarts used.  When
        the budget runs out the best Ritz pairs are returned with ``converged=False``
        and a :class:`~spectra.ConvergenceWarning`.

    Raises
    ------
    ValueError
        ``k`` outside ``[1, n]``, unknown ``which`` or ``reorth``, ``reorth="partial"``
        with ``block_size > 1``, ``tol`` not positive and
        finite, ``ncv``/``max_matvecs`` out of range, a non-symmetric operator, a
        zero or misshaped ``v0``, or a product returning NaN/Inf (the product is
        named).
    TypeError
        Non-integer ``k``, ``ncv`` or ``max_matvecs``; a ``v0`` that is not an array of
        real numbers (complex, strings, bool); non-bool ``return_eigenvectors`` or
        ``check_copies``; a non-string ``reorth``; a product returning complex or
        integer values.

    Notes
    -----
    *Scale.* Every product is multiplied by one power of two chosen from the first
    product (exact), so the results for :math:`cA` are :math:`c` times those for
    :math:`A` wherever :math:`cA`'s entries are normal numbers (bitwise for :math:`c`
    a power of two); norms of start vectors are computed scaled.

    *Memory.* With ``block_size=1`` the peak is at most about ``2 ncv + 2 k + 5``
    n-vectors in the operator's dtype: the basis (``ncv + 1``, allocated once and
    uninitialised, so that on a CPU only the rows a run reaches become resident; rotated
    in place at a thick restart by column chunks) and its stored products (``ncv``,
    rotated with it), one scratch vector, the product, the ``k`` Ritz vectors and their
    ``k`` products; the check for copies frees the basis first and needs
    ``2 m + 2 k + 3`` with ``m = min(ncv, max(20, 2k))``.  When ``ncv * n`` exceeds
    ``2**22`` numbers (32 MiB in float64; :data:`spectra.krylov._basis.STORE_LIMIT`)
    the products are not stored: ``ncv + 2 k + 5`` (``m + 2 k + 3`` for the check), and
    the residual check costs ``k`` products.  With ``reorth="partial"`` (the default
    above that size) the formula is the same, ``ncv + 2 k + 5`` (the products are never
    stored), plus ``2 (ncv + 1)**2`` host float64 numbers (the orthogonality estimates
    and, at a restart, the Gram matrix).  With ``block_size = b`` the basis holds
    ``ncv + b`` vectors and stores no products.  Host work per step is ``O(ncv)`` plus
    an eigendecomposition of the ``size x size`` projected matrix at each look: never
    before ``2 k + 1`` vectors, then every ``1 + size // 16`` steps or, once the wanted
    estimates decrease, after 0.4 of the steps their rate predicts (at most
    ``1 + size // 4``), and at the end of each cycle (tests/spectra/test_krylov_memory.py).

    *Float32.* The vectors and their updates stay in the operator's dtype; every
    coefficient and norm of the orthogonalisation is a float64 sum of partial sums over
    pieces of 256 entries (:func:`spectra.backend.rowdots`), so the explicit
    residuals of a float32 run reach about ``1.5 eps ||A||`` at ``n = 2e5`` (one float32
    sum over the whole length left a float32 ResNet Hessian's residual six times above
    ``tol = 1e-6``).  When the products themselves are less accurate than the
    tolerance asks (rounding in a long product chain, a slightly non-symmetric or noisy
    operator), the run stops once two successive explicit checks show the failing
    residuals no longer decreasing (by half) while their Lanczos estimates are ten times
    smaller: "not converged", a :class:`~spectra.ConvergenceWarning`, and the message
    gives the residual reached (also in units of ``eps ||A||``) and the tolerance it meets.

    *Small explicit matrices.* For a numpy array or scipy sparse matrix (as CSR) with
    ``n <= 4096`` the steps between two looks run in one compiled call (product,
    stored product, deflation, projection: :mod:`spectra._numba.trlan`), with the same
    method, answers, counts (``op.num_matvecs``) and messages as the general path,
    bit-reproducible for a given ``rng``; its basis and products are reused from a
    per-thread pool of two work arrays (at most ``(ncv + 1) n`` numbers each, kept
    after the call: a fresh array costs page faults that dominate runs of a few
    milliseconds).  The first call compiles the kernel once (cached on disk).

    After a breakdown (an invariant subspace, :math:`\beta_j \approx 0`) the method
    continues with a random vector orthogonal to the basis, and does not test
    convergence before the end of that basis cycle, so that eigenvalues of
    multiplicity above one, invisible to a single Krylov sequence, are looked for.
    Without a breakdown, further copies of a multiple eigenvalue enter only through
    rounding, as in every single-vector Krylov method (ARPACK included); without
    ``check_copies`` they may be missed (on a square-grid Laplacian, with exact double
    eigenvalues, ``k=3`` returned :math:`\lambda_1, \lambda_2, \lambda_4`).  The
    check finds them, or flags the risk; ``block_size >= multiplicity`` finds them
    reliably.

    With ``k = n`` a Krylov basis would need ``n + 1`` vectors; the matrix is then formed
    from ``n`` products with identity blocks (in the operator's dtype and device), checked
    for symmetry to the dtype's tolerance, and solved by :func:`numpy.linalg.eigh` in
    float64 (on its symmetric part).  ``which`` keeps its meaning: the same selection
    and order as the iterative path (for ``"BE"`` the alternating ends, returned
    ascending), so only the order differs between values of ``which``.  The result has
    ``converged=True``, ``num_matvecs = n``, no restarts, and the residual norms
    :math:`\|A x_i - \lambda_i x_i\|` of the float64 pairs against the formed matrix;
    ``tol``, ``ncv``, ``max_matvecs``, ``block_size``, ``v0`` and ``rng`` are not
    used.

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
    b = check_int(block_size, "block_size", low=1, high=max(n // 2, 1))
    k, tol = _check_args(n, k, which, tol)
    vectors = check_bool(return_eigenvectors, "return_eigenvectors")
    check = check_bool(check_copies, "check_copies")
    reorth = check_choice(reorth, "reorth", REORTH)
    if reorth == "partial" and b > 1:
        raise ValueError("reorth='partial' is for block_size=1; the block basis always "
                         "reorthogonalises fully (use reorth='auto' or 'full')")
    g = as_rng(rng)
    if k == n:  # no room for a Krylov basis of k + 1 vectors
        return _dense(op, which, vectors)
    ncv, max_matvecs, b = _check_budget(n, k, ncv, max_matvecs, b)
    if b == 1:
        B = make_basis(op, ncv, g, reorth=reorth)
        B.set_start(_start_vector(op, v0, g))
        keep = _num_keep(k, ncv)
    else:
        B = BlockBasis(op, ncv, b, g)
        B.set_start(_start_block(op, v0, g, b))
        keep = num_keep(k, ncv, b, _num_keep(k, ncv))
    # k products for the residual check, unless the basis stores its products
    budget = max_matvecs if getattr(B, "W", None) is not None else max(
        max_matvecs - k, min(max_matvecs, ncv))
    run = Run(B, k, which, tol, budget, max_matvecs, keep, _preference)
    theta, X, res, converged, verified = run.solve(_output_order)
    status, found, miss = "", 0, 1.0
    B.release()  # the basis is no longer needed: the check's basis takes its memory
    if converged and check and b == 1 and not run.exhausted:
        m = min(ncv, max(_CHECK_STEPS, 2 * k))
        cap = max(2 * m, B.used // 4)
        copies = Copies(B, which, tol, max_matvecs, m, cap,
                        _preference, _output_order, g)
        theta, X, res, status = copies.run(theta, X, res)
        found, miss = copies.found, copies.miss
        o = _output_order(theta, which)
        theta, res = theta[o], res[o]
        X = X[:, o.tolist()]
    return _finish(B, theta, X if vectors else None, res, k, which, converged, verified,
                   run.restarts, tol, (status, found, miss), b, max_matvecs, run.floor)


def _finish(B, theta, X, res, k, which, converged, verified, restarts, tol, check, b,
            run_limit, floor=None):
    status, found, miss = check
    lam, r = theta / B.inv, res / B.inv
    kind = "explicit" if verified else "estimated"
    if converged:
        msg = (f"converged: {k} eigenpairs to relative residual tol={tol:g} ({kind} "
               f"residuals) in {B.used} products and {restarts} restarts")
    else:
        ok = converged_mask(res, theta, tol, B.anorm, B.op.dtype)
        msg = (f"not converged: {int(np.sum(ok))} of {k} eigenpairs met tol={tol:g} "
               f"({kind} residuals) in {B.used} products (max_matvecs={run_limit}, "
               f"{restarts} restarts); largest residual {float(np.max(r)):.3g}. ")
        if floor is None:
            msg += "Raise max_matvecs or ncv, or loosen tol"
        else:
            e = float(eps(B.op.dtype))
            msg += (f"The explicit residuals stopped decreasing at {floor[0] / B.inv:.3g} "
                    f"(relative {floor[1]:.2g}, {floor[0] / max(B.anorm, 1e-300) / e:.0f} "
                    f"eps ||A|| in {dtype_name(B.op.dtype)}) while the "
                    "Lanczos estimates fell ten times below them: the accuracy that the "
                    "operator's products allow (their rounding, or an operator slightly "
                    "non-symmetric or noisy); more products cannot reach tol. Loosen tol to "
                    f"about {_round_up(2.0 * floor[1]):g}, or use a float64 operator")
        warn_not_converged("eigsh " + msg, stacklevel=4)
    if found:
        msg += (f"; a deflated check from a fresh random vector found {found} further "
                "copies of multiple eigenvalues, swapped in")
    if status == "bounded":
        msg += (f"; a deflated check from a fresh random vector found no missed copies "
                f"(random-start bound on a miss: {miss:.2g})")
    if status == "unsure":
        note = (f"copies of a multiple (or tightly clustered) eigenvalue at the end of the "
                f"wanted set may be missing: a deflated check from a fresh random vector "
                f"could not exclude them; use block_size={max(2, 2 * b)} (at least the "
                "multiplicity) to find them reliably")
        msg += "; " + note
        warn_not_converged("eigsh: " + note, stacklevel=4)
    return EigResult(
        eigenvalues=lam,
        eigenvectors=X,
        residual_norms=r,
        num_matvecs=B.used,
        converged=bool(converged),
        message=msg,
        num_restarts=restarts,
    )


def _round_up(x: float) -> float:
    """``x`` rounded up to one significant digit (a tolerance to suggest)."""
    e = 10.0 ** np.floor(np.log10(x))
    return float(np.ceil(x / e) * e)


def _dense(op: Operator, which: str, vectors: bool) -> EigResult:
    """All ``n`` eigenpairs from the formed matrix, in the order of ``which`` (``k = n``)."""
    n = op.shape[0]
    A = dense_matrix(op)
    inv = product_scale(A, np, f"one of the {n} products forming the matrix")
    A = A * inv  # a power of two: exact, and no over/underflow below (krylov._scale)
    asym = float(np.max(np.abs(A - A.T)))
    if asym > tolerance(op.dtype)["sym"] * max(float(np.max(np.abs(A))), 1e-300):
        raise ValueError(f"eigsh needs a symmetric operator, but its matrix (formed from {n} "
                         f"products) differs from its transpose by {asym / inv:.3g}")
    theta, Y = np.linalg.eigh(0.5 * (A + A.T))
    sel = _preference(theta, which)
    sel = sel[_output_order(theta[sel], which)]
    lam, U = theta[sel], np.ascontiguousarray(Y[:, sel])
    res = np.linalg.norm(A @ U - U * lam, axis=0) / inv
    return EigResult(
        eigenvalues=lam / inv,
        eigenvectors=from_numpy(U, like=op) if vectors else None,
        residual_norms=res,
        num_matvecs=n,
        converged=True,
        message=f"exact: dense eigendecomposition of the matrix formed from {n} products "
                f"(k = n = {n})",
        num_restarts=0,
    )
