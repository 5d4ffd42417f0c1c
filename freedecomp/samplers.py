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

__all__ = ["Sample", "haar_compress", "prepare_sample"]


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
