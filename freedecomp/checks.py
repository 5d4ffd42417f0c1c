r"""Checks that a sampled block can be free-decompressed: small pure functions.

Each check looks at a block (or its eigenvalues) and returns ``None`` when it has
nothing to say, or a :class:`Finding` naming the check, the measured figure and a
message with the fix. :func:`sparse_block_findings` runs the checks that tell a block
of a sparse graph from a free compression.

Why these checks: free decompression assumes that a uniformly random principal block
behaves like a free compression of the full matrix
(:doc:`/theory/free_decompression`). A random node subset of a *sparse* graph does
not: it keeps each edge with probability about :math:`n/N`, so with mean degree
:math:`d` a fraction of about :math:`(1 - n/N)^d` of the block's nodes has no
neighbour left in the block. Such an isolated row :math:`i` makes the unit vector
:math:`e_i` an exact eigenvector with eigenvalue :math:`B_{ii}` -- the
degree-normalised value (1 for a normalised Laplacian, 0 for an adjacency or a
normalised adjacency) -- so the block's spectrum carries an atom that the full
matrix does not have, and any decompression of it models that artefact. Spectra of
sparse graphs are determined locally: estimate them from connected patches
(:func:`freedecomp.samplers.graph_patches`) or by stochastic Lanczos quadrature on
the operator (:func:`spectra.density`).

>>> import numpy as np
>>> from freedecomp.checks import sparse_block_findings
>>> B = np.eye(40)                      # 40 nodes, no edge between them
>>> B[0, 1] = B[1, 0] = -0.5
>>> [f.name for f in sparse_block_findings(B)]
['isolated_rows', 'degree_atom']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra.validation import check_float

__all__ = ["DENSE_COUPLING", "Finding", "atoms", "degree_atom", "isolated_fraction",
           "isolated_rows", "sparse_block_findings"]

#: mean off-diagonal fraction of the linked rows above which a block is dense, not a graph
DENSE_COUPLING = 0.5


@dataclass(frozen=True)
class Finding:
    """One breached check.

    Attributes
    ----------
    name : str
        The check (``"isolated_rows"``, ``"degree_atom"``, ``"atom"``, ...).
    figure : float
        The measured figure (a fraction of rows or of eigenvalues).
    message : str
        What was found, why it matters and what to do instead.
    """

    name: str
    figure: float
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


_ALTERNATIVE = ("a random node subset of a sparse graph is not a free compression; estimate "
                "the spectrum from connected patches (freedecomp.samplers.graph_patches, not "
                "decompressed) or by SLQ on the operator (spectra.density)")


def _square(block: Any, name: str = "block") -> Any:
    """``block`` as a square dense array or scipy sparse matrix (CSR), validated."""
    import scipy.sparse as sp

    if sp.issparse(block):
        B = sp.csr_array(block, dtype=float)
        values = B.data
    else:
        try:
            B = np.asarray(block, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a square array or scipy sparse matrix, got "
                            f"{type(block).__name__}") from exc
        values = B
    if B.ndim != 2 or B.shape[0] != B.shape[1] or B.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {B.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return B


def _off_diagonal_counts(B: Any, rtol: float) -> tuple[np.ndarray, float]:
    """Per row, the number of off-diagonal entries above ``rtol * max|B|``; and the density."""
    import scipy.sparse as sp

    n = B.shape[0]
    if sp.issparse(B):
        C = sp.coo_array(B)
        scale = float(np.abs(C.data).max()) if C.nnz else 0.0
        keep = (C.row != C.col) & (np.abs(C.data) > rtol * scale)
        counts = np.bincount(C.row[keep], minlength=n)
    else:
        scale = float(np.abs(B).max())
        M = np.abs(B) > rtol * scale
        np.fill_diagonal(M, False)
        counts = M.sum(axis=1)
    density = float(counts.sum()) / max(n * (n - 1), 1)
    return counts, density


def isolated_fraction(block: Any, *, rtol: float = 0.0) -> float:
    """Fraction of rows of ``block`` whose off-diagonal entries are all zero.

    Parameters
    ----------
    block : array_like or scipy sparse matrix
        A square (principal) block.
    rtol : float
        Entries with ``|b_ij| <= rtol * max|B|`` count as zero (default: exact zeros).

    Returns
    -------
    float
        In ``[0, 1]``; 0 for any block with a dense off-diagonal part.
    """
    B = _square(block)
    rtol = check_float(rtol, "rtol", low=0.0, high=1.0, high_open=True)
    if B.shape[0] == 1:
        return 0.0
    counts, _ = _off_diagonal_counts(B, rtol)
    return float(np.mean(counts == 0))


def isolated_rows(block: Any, *, max_fraction: float = 0.05, rtol: float = 0.0
                  ) -> Finding | None:
    r"""Flag a block in which more than ``max_fraction`` of the rows are isolated.

    A free compression of a matrix with a dense (or even moderately sparse) coupling
    has no isolated row; a random node subset of a sparse graph with mean degree
    :math:`d` sampled at ratio :math:`\alpha = N/n` has a fraction of about
    :math:`(1 - 1/\alpha)^d` of them (71% on a road graph at :math:`\alpha = 8`).

    Returns
    -------
    Finding or None
        ``name="isolated_rows"``, ``figure`` the isolated fraction.
    """
    max_fraction = check_float(max_fraction, "max_fraction", low=0.0, high=1.0)
    B = _square(block)
    rtol = check_float(rtol, "rtol", low=0.0, high=1.0, high_open=True)
    if B.shape[0] == 1:
        return None
    counts, density = _off_diagonal_counts(B, rtol)
    frac = float(np.mean(counts == 0))
    if frac <= max_fraction:
        return None
    return Finding("isolated_rows", frac,
                   f"{100 * frac:.1f}% of the block's rows have no off-diagonal entry "
                   f"(off-diagonal density {density:.2g}, limit {100 * max_fraction:.0f}%): "
                   f"{_ALTERNATIVE}")


def atoms(eigenvalues: Any, *, rtol: float = 1e-9, min_fraction: float = 0.05
          ) -> list[tuple[float, float]]:
    """Point masses of a sample: groups of (numerically) equal eigenvalues.

    Sorted eigenvalues closer than ``rtol * scale`` (``scale`` the largest of
    ``max|x|`` and the spread) are one group; groups holding at least
    ``min_fraction`` of the eigenvalues (and at least two) are atoms. A continuous
    law gives no such group at any sample size a dense solver handles, so an atom is
    either in the law (a rank deficiency, a normalised-Laplacian eigenvalue 1) or an
    artefact of the sampling.

    Parameters
    ----------
    eigenvalues : array_like
        1-d, finite.
    rtol : float
        Relative tolerance of "equal" (default ``1e-9``, well above the accuracy
        of ``eigvalsh`` and far below the spacing of a continuous sample).
    min_fraction : float
        Smallest mass reported.

    Returns
    -------
    list of (float, float)
        ``(location, mass)`` by decreasing mass; location is the group's median.
    """
    e = np.sort(np.asarray(eigenvalues, dtype=float).ravel())
    if e.size == 0 or not np.all(np.isfinite(e)):
        raise ValueError("eigenvalues must be a non-empty array of finite numbers")
    rtol = check_float(rtol, "rtol", low=0.0, high=1.0, high_open=True)
    min_fraction = check_float(min_fraction, "min_fraction", low=0.0, high=1.0)
    scale = max(float(np.abs(e).max()), float(e[-1] - e[0]))
    if scale == 0.0:
        return [(0.0, 1.0)]
    breaks = np.flatnonzero(np.diff(e) > rtol * scale) + 1
    groups = np.split(e, breaks)
    out = [(float(np.median(g)), g.size / e.size) for g in groups
           if g.size >= 2 and g.size / e.size >= min_fraction]
    return sorted(out, key=lambda a: -a[1])


def degree_atom(block: Any, *, min_fraction: float = 0.1, rtol: float = 1e-9
                ) -> Finding | None:
    r"""Flag an atom of the block's eigenvalues at its degree-normalised value.

    The degree-normalised value is the block's most common diagonal entry (1 for a
    normalised Laplacian :math:`I - D^{-1/2} A D^{-1/2}`, 0 for an adjacency or a
    normalised adjacency): every isolated row puts an eigenvalue exactly there. An
    atom there holding at least ``min_fraction`` of the eigenvalues is the signature
    of a random node subset of a sparse graph (74% of the block's eigenvalues at 1 on
    a road graph at ratio 8, against 1.7% in the full graph).

    Returns
    -------
    Finding or None
        ``name="degree_atom"``, ``figure`` the atom's mass.
    """
    import scipy.sparse as sp

    B = _square(block)
    min_fraction = check_float(min_fraction, "min_fraction", low=0.0, high=1.0)
    diag = B.diagonal() if sp.issparse(B) else np.diag(B)
    values, counts = np.unique(diag, return_counts=True)
    value = float(values[np.argmax(counts)])
    dense = B.toarray() if sp.issparse(B) else B
    eigs = np.linalg.eigvalsh(0.5 * (dense + dense.T))
    scale = max(float(np.abs(eigs).max()), float(eigs[-1] - eigs[0]), 1e-300)
    for loc, mass in atoms(eigs, rtol=rtol, min_fraction=min_fraction):
        if abs(loc - value) <= 10 * rtol * scale:
            return Finding("degree_atom", mass,
                           f"{100 * mass:.1f}% of the block's eigenvalues equal its "
                           f"degree-normalised diagonal value {value:.6g} (the eigenvalue of "
                           f"an isolated row; limit {100 * min_fraction:.0f}%): {_ALTERNATIVE}")
    return None


def sparse_block_findings(block: Any, *, max_isolated: float = 0.05,
                          min_atom: float = 0.1) -> list[Finding]:
    """Every finding that says a block is a sparse-graph subset, not a free compression.

    Runs :func:`isolated_rows` (more than ``max_isolated`` of the rows isolated) and
    :func:`degree_atom` (an atom of at least ``min_atom`` at the degree-normalised
    value). A dense block (no exact zeros off the diagonal) returns ``[]`` without an
    eigensolve, and so does a block whose rows that are not isolated are densely
    coupled (on average to more than :data:`DENSE_COUPLING` of the other rows): that is
    a dense matrix with zero rows -- the dead units of a network's Hessian or
    Gauss-Newton matrix, zero rows of the full matrix too -- not a node subset of a
    sparse graph, whose linked rows keep only a few of their neighbours (a random
    block of a Hessian of a small MLP: 5.3% zero rows, the others coupled to 95% of
    the block).

    Parameters
    ----------
    block : array_like or scipy sparse matrix
        A square principal block.
    max_isolated, min_atom : float
        Limits of the two checks, fractions in ``[0, 1]``.

    Returns
    -------
    list of Finding
        Empty when the block looks like a free compression on these counts.
    """
    B = _square(block)
    max_isolated = check_float(max_isolated, "max_isolated", low=0.0, high=1.0)
    min_atom = check_float(min_atom, "min_atom", low=0.0, high=1.0)
    if B.shape[0] == 1:
        return []
    counts, density = _off_diagonal_counts(B, 0.0)
    linked = counts[counts > 0]
    if density == 1.0 or (linked.size and linked.mean() > DENSE_COUPLING * (B.shape[0] - 1)):
        return []
    found = [isolated_rows(B, max_fraction=max_isolated), degree_atom(B, min_fraction=min_atom)]
    return [f for f in found if f is not None]
