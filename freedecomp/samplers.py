"""Samples for :func:`freedecomp.decompress`: eigenvalues, blocks or a block sampler.

:func:`prepare_sample` turns what the caller gives (eigenvalues, principal blocks, or a
callable that returns the principal block on given indices) into a :class:`Sample`,
validating it with errors that say what was wrong; :class:`Sample` draws the random
sub-blocks and Haar compressions that validation uses. :func:`graph_patches` draws
connected breadth-first patches of a sparse graph: the estimator for matrices whose
random principal blocks are not free compressions (:mod:`freedecomp.checks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.probes import as_rng
from spectra.validation import check_bool, check_int

__all__ = ["KernelBlocks", "Sample", "graph_patches", "haar_compress", "kernel_blocks",
           "prepare_sample"]


def haar_compress(eigs: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    r"""Eigenvalues of a ``k x k`` principal block of ``O diag(eigs) O^T``, ``O`` Haar.

    The first ``k`` rows of a Haar matrix span a uniformly random ``k``-dimensional
    subspace: an orthonormal basis ``Q`` of the column space of an ``n x k`` Gaussian
    ``G`` (thin QR), so the block's eigenvalues are those of
    :math:`Q^T \Lambda Q` (``O(k^2 n)`` instead of ``O(n^3)``; NumPy only).
    """
    G = rng.standard_normal((eigs.size, k))
    Q, _ = np.linalg.qr(G)
    return np.linalg.eigvalsh((Q.T * eigs) @ Q)


@dataclass
class Sample:
    """Normalised sample: eigenvalues of one or several ``n x n`` principal blocks."""

    n: int
    blocks: list
    matrices: list | None = None
    sampler: Callable | None = None
    total: int | None = None

    @property
    def matrix(self) -> np.ndarray | None:
        """The first block as a matrix (``None`` when only eigenvalues were given)."""
        return self.matrices[0] if self.matrices else None

    @property
    def psd(self) -> bool:
        """Every block is positive semi-definite (up to rounding)."""
        e = self.pooled
        return bool(e.min() >= -1e-10 * max(float(np.abs(e).max()), 1e-300))

    @property
    def eigs(self) -> np.ndarray:
        """Eigenvalues of the first block."""
        return self.blocks[0]

    @property
    def pooled(self) -> np.ndarray:
        """Eigenvalues of all blocks together (their average law is the compressed law)."""
        return np.concatenate(self.blocks)

    def subblock(self, k: int, rng: np.random.Generator, haar: bool = False,
                 block: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """Like :meth:`subsample`, with the sub-block itself (``None`` for Haar ones)."""
        if self.matrices is not None and not haar:
            idx = np.sort(rng.choice(self.n, size=k, replace=False))
            M = self.matrices[block][np.ix_(idx, idx)]
            return np.linalg.eigvalsh(M), M
        return haar_compress(self.blocks[block], k, rng), None

    def subsample(self, k: int, rng: np.random.Generator, haar: bool = False,
                  block: int = 0) -> np.ndarray:
        """Eigenvalues of a random ``k x k`` principal block of block number ``block``.

        A real sub-block when a matrix is at hand (``haar=False``), otherwise a Haar
        compression of the eigenvalues (an exact free compression in law).
        """
        if self.matrices is not None and not haar:
            idx = np.sort(rng.choice(self.n, size=k, replace=False))
            M = self.matrices[block]
            return np.linalg.eigvalsh(M[np.ix_(idx, idx)])
        return haar_compress(self.blocks[block], k, rng)


def _as_real(value: Any, what: str) -> np.ndarray:
    """``value`` as a float array; complex, string and object data are refused by name."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise TypeError(f"{what} must be real: got complex values (free decompression needs "
                        "the eigenvalues of a real symmetric matrix; pass .real if the "
                        "imaginary part is rounding)")
    if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and any(
            isinstance(v, (str, bytes)) for v in arr.ravel())):
        raise TypeError(f"{what} must be numbers, got an array of {arr.dtype} "
                        f"(e.g. {arr.ravel()[0]!r})")
    try:
        return np.asarray(arr, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be numbers, got {type(value).__name__} holding "
                        f"{arr.dtype} values") from exc


def _check_matrix(A: np.ndarray) -> np.ndarray:
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"a submatrix must be square, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("the submatrix has non-finite entries (NaN or inf)")
    scale = float(np.abs(A).max()) or 1.0
    asym = float(np.abs(A - A.T).max())
    if asym > 1e-8 * scale:
        raise ValueError(
            f"the submatrix is not symmetric (max |A - A^T| = {asym:.2e}); free decompression "
            "needs a principal submatrix of a symmetric matrix")
    return 0.5 * (A + A.T)


def _check_eigs(e: np.ndarray, minimum: int) -> np.ndarray:
    if e.size < minimum:
        raise ValueError(f"need at least {minimum} eigenvalues to fit a model, got {e.size}")
    if not np.all(np.isfinite(e)):
        raise ValueError("the eigenvalues contain NaN or inf")
    if float(e.std()) <= 1e-12 * (1.0 + abs(float(e.mean()))):
        raise ValueError(
            "all eigenvalues are equal: the sample is a multiple of the identity, whose "
            "decompression is the same point mass; nothing to estimate")
    return np.sort(e)


def prepare_sample(sample: Any, *, n: int | None, total: int | None,
                   rng: np.random.Generator, num_samples: int, minimum: int) -> Sample:
    """Turn any accepted ``sample`` into a :class:`Sample` (see ``decompress``)."""
    if callable(sample):
        if n is None or total is None:
            raise TypeError("a block sampler needs n= (block size) and total= (matrix size)")
        n = check_int(n, "n", low=1)
        total = check_int(total, "total", low=n + 1, hint=f" (it must exceed n = {n})")
        num_samples = check_int(num_samples, "num_samples", low=1)
        mats = []
        for _ in range(num_samples):
            idx = np.sort(rng.choice(total, size=n, replace=False))
            B = _as_real(sample(idx), "the block returned by the sampler")
            if B.shape != (n, n):
                raise ValueError(f"the sampler returned shape {B.shape}, expected {(n, n)}")
            mats.append(_check_matrix(B))
        blocks = [_check_eigs(np.linalg.eigvalsh(M), minimum) for M in mats]
        return Sample(n, blocks, matrices=mats, sampler=sample, total=total)
    if total is not None:
        total = check_int(total, "total", low=1)
    if isinstance(sample, (list, tuple)) and sample and np.ndim(sample[0]) == 2:
        shapes = sorted({np.shape(s) for s in sample})
        if len(shapes) > 1:
            raise ValueError(f"the blocks must all have the same size n x n, got shapes "
                             f"{shapes}; decompress blocks of one size together")
        sample = np.stack([_as_real(s, "a block") for s in sample])
    if isinstance(sample, (list, tuple)) and len(sample) > 1 and all(
            np.ndim(s) == 1 for s in sample) and len({np.size(s) for s in sample}) == 1 \
            and np.size(sample[0]) > 1:
        # the eigenvalues of several blocks of one size (no matrices: Haar sub-samples)
        blocks = [_check_eigs(_as_real(s, "block eigenvalues"), minimum) for s in sample]
        return Sample(blocks[0].size, blocks, total=total)
    if isinstance(sample, str):
        raise TypeError("sample must be eigenvalues (1-d), a symmetric matrix (2-d), a stack "
                        "of them (3-d) or a callable block sampler, got a str")
    try:
        arr = _as_real(sample, "sample")
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(
            f"sample must be eigenvalues (1-d), a symmetric matrix (2-d), a stack of them "
            f"(3-d) or a callable block sampler, got {type(sample).__name__}") from exc
    if arr.ndim == 1:
        e = _check_eigs(arr, minimum)
        return Sample(e.size, [e], total=total)
    if arr.ndim == 2:
        A = _check_matrix(arr)
        return Sample(A.shape[0], [_check_eigs(np.linalg.eigvalsh(A), minimum)], matrices=[A],
                      total=total)
    if arr.ndim == 3:
        mats = [_check_matrix(a) for a in arr]
        blocks = [_check_eigs(np.linalg.eigvalsh(M), minimum) for M in mats]
        return Sample(arr.shape[1], blocks, matrices=mats, total=total)
    raise ValueError(f"sample must be 1-, 2- or 3-dimensional, got {arr.ndim} dimensions")


def _graph(matrix: Any) -> Any:
    """``matrix`` as a validated square symmetric CSR array with explicit zeros removed."""
    import scipy.sparse as sp

    if sp.issparse(matrix):
        A = sp.csr_array(matrix, dtype=float, copy=True)
    elif isinstance(matrix, np.ndarray) and matrix.ndim == 2:
        A = sp.csr_array(np.asarray(matrix, dtype=float))
    else:
        raise TypeError(f"the graph must be a scipy sparse matrix (or a 2-d numpy array) of an "
                        f"adjacency or Laplacian, got {type(matrix).__name__}")
    if A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"the graph matrix must be non-empty and square, got shape {A.shape}")
    if not np.all(np.isfinite(A.data)):
        raise ValueError("the graph matrix has non-finite entries (NaN or inf)")
    A.eliminate_zeros()
    scale = float(np.abs(A.data).max()) if A.nnz else 1.0
    asym = abs(A - A.T)
    if asym.nnz and float(asym.max()) > 1e-10 * scale:
        raise ValueError(f"the graph matrix is not symmetric (max |A - A^T| = "
                         f"{float(asym.max()):.2e}): graph_patches needs an undirected graph")
    A.sort_indices()
    return A


def _bfs_patch(A: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """Node indices of one breadth-first patch of ``n`` nodes (sorted).

    From a uniformly random seed, whole BFS layers are added while they fit; the layer
    that would overflow contributes a uniformly random subset of itself. A component
    exhausted before ``n`` nodes is kept whole and the patch continues from a new
    random seed among the unvisited nodes.
    """
    N = A.shape[0]
    visited = np.zeros(N, dtype=bool)
    chosen: list[np.ndarray] = []
    count = 0
    while count < n:
        seed = rng.choice(np.flatnonzero(~visited))
        frontier = np.array([seed])
        while frontier.size and count < n:
            if frontier.size > n - count:
                frontier = rng.choice(frontier, size=n - count, replace=False)
            visited[frontier] = True
            chosen.append(frontier)
            count += frontier.size
            nbrs = np.unique(A[frontier].indices)
            frontier = nbrs[~visited[nbrs]]
            frontier = np.sort(frontier)
    return np.sort(np.concatenate(chosen))


def graph_patches(matrix: Any, n: int, num_blocks: int = 1, rng: Any = None, *,
                  return_indices: bool = False) -> Any:
    r"""Principal blocks of a sparse graph matrix on connected breadth-first patches.

    A uniformly random node subset of a sparse graph is not a free compression: it
    keeps each edge with probability about :math:`n/N`, leaving most nodes isolated
    (:func:`freedecomp.checks.sparse_block_findings` detects it). The spectrum of a
    sparse graph is determined locally, so a connected patch of ``n`` nodes -- the
    ball around a random node, grown breadth-first -- has nearly the spectral law of
    the whole graph, *without* decompression: use the blocks' pooled eigenvalues as
    the estimate (boundary nodes lose some neighbours, an error that shrinks with the
    patch's surface-to-volume ratio).

    Parameters
    ----------
    matrix : scipy sparse matrix or 2-d ndarray, shape (N, N)
        A symmetric adjacency, Laplacian or normalised Laplacian; its off-diagonal
        non-zeros are the graph's edges.
    n : int
        Patch size, ``1 <= n <= N``.
    num_blocks : int
        Number of patches (independent random seeds).
    rng : None, int or numpy Generator
        Randomness of the seeds and of the last, partial BFS layer.
    return_indices : bool
        Also return the node indices of each patch.

    Returns
    -------
    blocks : ndarray, shape (num_blocks, n, n)
        Dense principal blocks ``matrix[idx][:, idx]`` (indices sorted), accepted by
        :func:`freedecomp.decompress` like any stack of blocks.
    indices : ndarray of int, shape (num_blocks, n)
        Only with ``return_indices=True``.

    Raises
    ------
    TypeError
        A matrix that is neither scipy sparse nor a 2-d array; non-integer sizes.
    ValueError
        A non-square, non-finite or non-symmetric matrix; ``n`` outside ``[1, N]``;
        ``num_blocks < 1``.

    Notes
    -----
    Each patch grows from a uniformly random seed, one BFS layer at a time; the layer
    that would overflow contributes a uniformly random subset. When the seed's
    connected component has fewer than ``n`` nodes the whole component is kept and
    the patch continues from a new random unvisited seed, so disconnected graphs and
    ``n`` larger than a component are handled (such a patch is a union of whole
    components and one connected piece).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from freedecomp.samplers import graph_patches
    >>> path = sp.diags_array([np.ones(99), np.ones(99)], offsets=[-1, 1])  # a path graph
    >>> blocks, idx = graph_patches(path, 10, 2, rng=0, return_indices=True)
    >>> blocks.shape, bool(np.all(np.diff(idx, axis=1) == 1))   # contiguous pieces
    ((2, 10, 10), True)
    """
    A = _graph(matrix)
    N = A.shape[0]
    n = check_int(n, "n", low=1, high=N, hint=f" (the graph has N = {N} nodes)")
    num_blocks = check_int(num_blocks, "num_blocks", low=1)
    return_indices = check_bool(return_indices, "return_indices")
    g = as_rng(rng)
    if not isinstance(g, np.random.Generator):
        raise TypeError("graph_patches needs a numpy Generator (or an int seed / None) as rng")
    idx = np.stack([_bfs_patch(A, n, g) for _ in range(num_blocks)])
    blocks = np.stack([A[i][:, i].toarray() for i in idx])
    return (blocks, idx) if return_indices else blocks


# ======================================================================== kernel blocks
class KernelBlocks:
    """Block sampler of a kernel matrix: ``sampler(indices)`` is the kernel on those rows.

    Build it with :func:`kernel_blocks`. Each call returns a
    :class:`spectra.operators.KernelOperator` on ``X[indices]`` (never formed; dense
    blocks are read with its ``block`` method) with the bandwidth fixed once on all
    of ``X``, so every block is a principal submatrix of the same ``N x N`` kernel.

    Attributes
    ----------
    X : ndarray or torch.Tensor
    operator : KernelOperator
        The full ``N x N`` kernel (for products or a reference; never formed).
    total : int
        ``N``, the number of points.
    psd : bool
        Whether the kernel is positive semi-definite (passed on to block estimates).
    """

    def __init__(self, X: Any, kernel: Any = "rbf", *, bandwidth: float | None = None,
                 shift: float = 0.0, rng: Any = 0, **params: Any) -> None:
        from spectra.operators import kernel_operator

        self.operator = kernel_operator(X, kernel, bandwidth=bandwidth, shift=shift, rng=rng,
                                        **params)
        self.X = self.operator.X
        self.total = int(self.operator.shape[0])
        self.psd = bool(self.operator.psd)
        self._args = (self.operator.kernel, dict(bandwidth=self.operator.bandwidth,
                                                 shift=shift, **params))

    @property
    def block_options(self) -> dict:
        """Defaults for :func:`freedecomp.blocks.block_spectrum` (the PSD flag)."""
        return {"psd": self.psd}

    def __call__(self, indices: Any) -> Any:
        """The kernel operator on ``X[indices]`` (distinct indices in ``[0, N)``)."""
        from spectra.operators import kernel_operator

        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be a non-empty 1-d integer array, got shape "
                             f"{idx.shape} of {idx.dtype}")
        if idx.min() < 0 or idx.max() >= self.total or np.unique(idx).size != idx.size:
            raise ValueError(f"indices must be distinct and lie in [0, {self.total})")
        kernel, kw = self._args
        return kernel_operator(self.X[idx], kernel, **kw)

    def __repr__(self) -> str:
        return f"KernelBlocks({self.operator!r})"


def kernel_blocks(X: Any, kernel: Any = "rbf", *, bandwidth: float | None = None,
                  shift: float = 0.0, rng: Any = 0, **params: Any) -> KernelBlocks:
    r"""A block sampler of the kernel matrix :math:`K(X, X) + sI` for ``decompress``.

    Parameters
    ----------
    X : array_like or torch.Tensor, shape ``(N, d)``
    kernel, bandwidth, shift, rng, **params
        As for :func:`spectra.kernel_operator`; the bandwidth (default: the median
        heuristic) is resolved once on all of ``X``.

    Returns
    -------
    KernelBlocks
        ``sampler(indices)`` returns the kernel operator on those rows; ``.total`` is
        ``N``.

    Examples
    --------
    >>> import numpy as np
    >>> from freedecomp import decompress
    >>> from freedecomp.samplers import kernel_blocks
    >>> X = np.random.default_rng(0).standard_normal((2000, 3))
    >>> res = decompress(kernel_blocks(X), 2000, n=250, total=2000, rng=0, num_samples=2)
    >>> res.size
    2000
    """
    return KernelBlocks(X, kernel, bandwidth=bandwidth, shift=shift, rng=rng, **params)
