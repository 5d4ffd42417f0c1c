r"""Outliers and exact zeros of a block spectrum, and the map of outliers along the flow.

An eigenvalue of the block that sits clearly outside its bulk has mass ``1/n``; a
low-degree model of the whole sample cannot represent it. :func:`split_spectrum`
separates, in each block, the exact zeros (a rank-deficient block: an atom at zero),
the outliers above and below the bulk, and the bulk itself.

**The rule.** Near a square-root edge the ``k``-th largest of ``n`` eigenvalues sits at
:math:`x_{(k)} \approx E - C k^{2/3}`. ``E`` and ``C`` are fitted by least squares on
the ranks ``k`` in ``[n/100, n/12]`` (at least ``[3, 12]``) below the outliers found
so far, and an eigenvalue is an outlier when it lies more than ``GAP * C`` beyond the
fitted edge ``E``; the fit is repeated without the outliers until the count is stable.
On Wigner, Marchenko-Pastur and Wachter samples (``n = 128..1024``, 40 seeds each) the
largest eigenvalue never exceeded ``E + 1.0 C``, so ``GAP = 3`` leaves a margin against
false outliers while finding spikes just past the detection threshold. Several blocks
are split with one count, the median over the blocks (a count stable under resampling).

**The map.** With :math:`m_b` the Stieltjes transform of the block's bulk (real outside
its support), an outlier :math:`l` of the block moves along the real characteristic to

.. math:: \lambda = l + \frac{1 - \alpha}{m_b(l)}

(:doc:`/theory/free_decompression`, "Outliers and the real-axis characteristic map");
far from the bulk :math:`m_b(l) \approx -1/l` and :math:`\lambda \approx \alpha l`, the
Nystrom scaling. The count of outliers is kept: ``k`` outliers of the block are ``k``
outliers of the full matrix, each of mass ``1/N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GAP", "Outlier", "Split", "localised", "map_outliers", "split_blocks",
           "split_spectrum", "zero_tolerance"]

GAP = 3.0
#: inverse participation ratio above which an outlier's eigenvector is on one row
LOCAL = 0.5
#: at most this fraction of a block is treated as outliers on each side
MAX_FRACTION = 0.25


@dataclass(frozen=True)
class Outlier:
    """An isolated eigenvalue of the full matrix, mapped from the blocks.

    Attributes
    ----------
    location : float
        Estimated eigenvalue of the ``N x N`` matrix (mean over the blocks).
    error : float
        Spread of the mapped location: the standard deviation over the blocks (several
        blocks), or over sub-blocks of ``3n/4`` of the block (one block); ``nan`` when
        neither is available.
    block_location : float
        The corresponding eigenvalue of the block (mean over the blocks).
    side : str
        ``"upper"`` or ``"lower"``.
    count : float
        How many eigenvalues of the full matrix it stands for: 1 for a spike of the
        whole matrix, ``N/(blocks * n)`` for a localised one.
    localised : bool
        Its eigenvector sits on one row of the block (:func:`localised`); its location is
        then not moved by the flow.
    """

    location: float
    error: float
    block_location: float
    side: str
    count: float = 1.0
    localised: bool = False


@dataclass(frozen=True)
class Split:
    """One block's spectrum split into zeros, outliers and bulk (all sorted)."""

    zeros: int
    low: np.ndarray
    high: np.ndarray
    bulk: np.ndarray
    local: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def rest(self) -> np.ndarray:
        """The bulk with the exact zeros (what the outliers are mapped against)."""
        return np.sort(np.concatenate([np.zeros(self.zeros), self.bulk]))


def zero_tolerance(eigs: np.ndarray) -> float:
    """Eigenvalues within this of zero are exact zeros (rounding of ``eigvalsh``)."""
    return 64.0 * eigs.size * np.finfo(float).eps * float(np.abs(eigs).max())


def _edge_count(x: np.ndarray) -> int:
    """Number of outliers above the square-root edge fitted to the descending ``x``."""
    n = x.size
    kmax = int(MAX_FRACTION * n)
    k = 0
    for _ in range(8):
        rest = x[k:]
        lo, hi = max(3, rest.size // 100), max(12, rest.size // 12)
        if rest.size < hi + 4:
            return k
        ranks = np.arange(lo, hi + 1, dtype=float)
        A = np.stack([np.ones_like(ranks), -(ranks ** (2.0 / 3.0))], axis=1)
        (E, C), *_ = np.linalg.lstsq(A, rest[lo - 1:hi], rcond=None)
        if not C > 0:
            return k
        new = k + int(np.sum(rest > E + GAP * C))
        new = min(new, kmax)
        if new == k:
            return k
        k = new
    return k


def split_spectrum(eigs: np.ndarray, *, psd: bool, atoms: bool = True,
                   high: int | None = None, low: int | None = None) -> Split:
    """Split one block's sorted eigenvalues (see the module notes for the rule).

    Parameters
    ----------
    eigs : ndarray
        Sorted eigenvalues of one block.
    psd : bool
        The matrix is positive semi-definite: no lower outliers are sought.
    atoms : bool
        Treat exact zeros as an atom: at least ``max(2, n/200)`` eigenvalues within
        :func:`zero_tolerance` of zero (a rank-deficient block).
    high, low : int, optional
        Prescribed outlier counts (the median over several blocks).
    """
    e = np.sort(np.asarray(eigs, float))
    zero = np.abs(e) <= zero_tolerance(e)
    nz = int(zero.sum())
    if not atoms or nz < max(2, e.size // 200):
        nz, zero = 0, np.zeros(e.size, bool)
    rest = e[~zero]
    kh = _edge_count(rest[::-1]) if high is None else high
    kl = (0 if psd else _edge_count(-rest)) if low is None else low
    kh, kl = min(kh, rest.size // 4), min(kl, rest.size // 4)
    return Split(zeros=nz, low=rest[:kl], high=rest[rest.size - kh:],
                 bulk=rest[kl:rest.size - kh])


def localised(matrix: np.ndarray, upper: int, lower: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Which of the ``upper`` largest and ``lower`` smallest eigenvalues are on one row.

    The inverse participation ratio :math:`\sum_i v_i^4` of a unit eigenvector is about
    ``3/n`` for a delocalised one and near 1 for one concentrated on a row; above
    ``LOCAL`` the outlier is a row of the matrix (a large diagonal entry, a node of
    high degree), not a spike of the whole matrix. One partial eigensolve per side.

    Returns
    -------
    high, low : ndarray of bool
        In ascending order of the eigenvalues, like :class:`Split`'s ``high``/``low``.
    """
    from scipy.linalg import eigh  # scipy: loaded on first use (start-up time)

    n = matrix.shape[0]
    out = []
    for lo, hi, k in ((n - upper, n - 1, upper), (0, lower - 1, lower)):
        if k == 0:
            out.append(np.zeros(0, bool))
            continue
        _, V = eigh(matrix, subset_by_index=(lo, hi))
        out.append(np.sum(V**4, axis=0) > LOCAL)
    return out[0], out[1]


def _classify(s: Split, matrix: np.ndarray) -> Split:
    """Move the localised outliers of ``s`` to ``local``."""
    loc_h, loc_l = localised(matrix, s.high.size, s.low.size)
    return Split(s.zeros, s.low[~loc_l], s.high[~loc_h], s.bulk,
                 np.sort(np.concatenate([s.low[loc_l], s.high[loc_h]])))


def _force(s: Split, kh: int, kl: int) -> Split:
    """The split with exactly ``kh`` upper and ``kl`` lower delocalised outliers."""
    pool = np.sort(np.concatenate([s.low, s.bulk, s.high]))
    kh, kl = min(kh, pool.size // 4), min(kl, pool.size // 4)
    return Split(s.zeros, pool[:kl], pool[pool.size - kh:], pool[kl:pool.size - kh],
                 s.local)


def split_blocks(blocks: list[np.ndarray], psd: bool, atoms: bool = True,
                 matrices: list | None = None) -> list[Split]:
    """Split several blocks with one count of delocalised outliers per side.

    With the ``matrices`` at hand, outliers whose eigenvector sits on one coordinate are
    set apart as ``local`` (:func:`localised`): they are rows of the matrix, present in
    about ``n/N`` of the blocks, so their count is not kept but scaled by ``N/n`` (their
    mass fraction is kept) and their location is not moved. The count of the others is
    the median over the blocks.
    """
    first = [split_spectrum(b, psd=psd, atoms=atoms) for b in blocks]
    if matrices is not None:
        first = [_classify(s, M) if M is not None and (s.high.size or s.low.size) else s
                 for s, M in zip(first, matrices, strict=True)]
    if len(blocks) == 1:
        return first
    kh = int(np.median([s.high.size for s in first]))
    kl = int(np.median([s.low.size for s in first]))
    return [_force(s, kh, kl) for s in first]


def map_outliers(values: np.ndarray, rest: np.ndarray, alpha: float) -> np.ndarray:
    r"""Map block outliers ``values`` along the real characteristic by ``alpha``.

    :math:`\lambda = l + (1 - \alpha)/m_b(l)` with the empirical Stieltjes transform
    :math:`m_b(l) = \operatorname{mean}_i 1/(r_i - l)` of the block's bulk ``rest``.
    """
    values = np.asarray(values, float)
    if values.size == 0:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        mb = np.mean(1.0 / (rest[None, :] - values[:, None]), axis=1)
        mapped = values + (1.0 - alpha) / mb
    # a value tied with the rest has no finite map: its far-outlier (Nystrom) limit
    return np.where(np.isfinite(mapped), mapped, alpha * values)
