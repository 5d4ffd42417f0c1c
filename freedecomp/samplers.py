"""Samples for :func:`freedecomp.decompress`: eigenvalues, blocks or a block sampler.

:func:`prepare_sample` turns what the caller gives (eigenvalues, principal blocks, or a
callable that returns the principal block on given indices) into a :class:`Sample`,
validating it with errors that say what was wrong; :class:`Sample` draws the random
sub-blocks and Haar compressions that validation uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.validation import check_int

__all__ = ["KernelBlocks", "Sample", "haar_compress", "kernel_blocks", "prepare_sample"]


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
    matrix: np.ndarray | None = None
    sampler: Callable | None = None
    total: int | None = None

    @property
    def eigs(self) -> np.ndarray:
        """Eigenvalues of the first block."""
        return self.blocks[0]

    @property
    def pooled(self) -> np.ndarray:
        """Eigenvalues of all blocks together (their average law is the compressed law)."""
        return np.concatenate(self.blocks)

    def subsample(self, k: int, rng: np.random.Generator, haar: bool = False) -> np.ndarray:
        """Eigenvalues of a random ``k x k`` principal block of the first sample.

        A real sub-block when a matrix is at hand (``haar=False``), otherwise a Haar
        compression of the eigenvalues (an exact free compression in law).
        """
        if self.matrix is not None and not haar:
            idx = np.sort(rng.choice(self.n, size=k, replace=False))
            return np.linalg.eigvalsh(self.matrix[np.ix_(idx, idx)])
        return haar_compress(self.eigs, k, rng)


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
            B = np.asarray(sample(idx), dtype=float)
            if B.shape != (n, n):
                raise ValueError(f"the sampler returned shape {B.shape}, expected {(n, n)}")
            mats.append(_check_matrix(B))
        blocks = [_check_eigs(np.linalg.eigvalsh(M), minimum) for M in mats]
        return Sample(n, blocks, matrix=mats[0], sampler=sample, total=total)
    if total is not None:
        total = check_int(total, "total", low=1)
    if isinstance(sample, (list, tuple)) and sample and np.ndim(sample[0]) == 2:
        sample = np.stack([np.asarray(s, dtype=float) for s in sample])
    try:
        arr = np.asarray(sample, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"sample must be eigenvalues (1-d), a symmetric matrix (2-d), a stack of them "
            f"(3-d) or a callable block sampler, got {type(sample).__name__}") from exc
    if arr.ndim == 1:
        e = _check_eigs(arr, minimum)
        return Sample(e.size, [e], total=total)
    if arr.ndim == 2:
        A = _check_matrix(arr)
        return Sample(A.shape[0], [_check_eigs(np.linalg.eigvalsh(A), minimum)], matrix=A,
                      total=total)
    if arr.ndim == 3:
        mats = [_check_matrix(a) for a in arr]
        blocks = [_check_eigs(np.linalg.eigvalsh(M), minimum) for M in mats]
        return Sample(arr.shape[1], blocks, matrix=mats[0], total=total)
    raise ValueError(f"sample must be 1-, 2- or 3-dimensional, got {arr.ndim} dimensions")


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
