"""What a matrix-like input is, and whether it is usable.

The checks behind :func:`~spectra.operators.as_operator`: sparse and torch layouts,
exact symmetry, finite entries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import is_torch, tolerance


def is_sparse(A: Any) -> bool:
    """Whether ``A`` is a scipy sparse matrix or array."""
    return type(A).__module__.startswith("scipy.sparse") and hasattr(A, "tocsr")


def is_linear_operator(A: Any) -> bool:
    """Whether ``A`` is a :class:`scipy.sparse.linalg.LinearOperator`."""
    mod = type(A).__module__
    return mod.startswith("scipy.sparse.linalg") and hasattr(A, "matvec")


TORCH_SPARSE = ("sparse_coo", "sparse_csr", "sparse_csc")


def torch_layout(A: Any) -> str:
    """``"strided"`` for a dense tensor, else the sparse layout name (``"sparse_coo"``...)."""
    return str(A.layout).replace("torch.", "")


def torch_sparse_parts(A: Any) -> tuple[Any, Any]:
    """``(A, A^T)`` of a torch sparse tensor as coalesced COO tensors."""
    C = A.to_sparse_coo().coalesce() if torch_layout(A) != "sparse_coo" else A.coalesce()
    return C, C.t().coalesce()


def exact_symmetry(A: Any, dtype: Any) -> bool:
    tol = tolerance(dtype)["sym"]
    if A.shape[0] != A.shape[1]:
        return False
    if is_torch(A) and torch_layout(A) != "strided":
        C, Ct = torch_sparse_parts(A)
        vals = C.values()
        scale = float(vals.abs().max()) if vals.numel() else 0.0
        D = (C - Ct).coalesce().values()
        return bool((float(D.abs().max()) if D.numel() else 0.0) <= tol * max(scale, 1e-300))
    if is_torch(A):
        scale = float(A.abs().max()) if A.numel() else 0.0
        return bool((A - A.T).abs().max() <= tol * max(scale, 1e-300))
    if is_sparse(A):
        scale = float(np.max(np.abs(A.data))) if A.nnz else 0.0
        diff = csr_asymmetry(A)
        return bool(diff <= tol * max(scale, 1e-300))
    scale = np.abs(A).max()
    return bool(np.abs(A - A.T).max() <= tol * max(scale, 1e-300))


def csr_asymmetry(A: Any) -> float:
    """``max |A - A^T|`` of a CSR matrix.

    A canonical matrix (sorted indices, no duplicates) whose transpose has the same
    pattern, the usual case, compares the stored values directly (an O(nnz) transpose,
    no sparse subtraction: 5-10x faster at n = 260-600); any other goes through
    ``A - A.T``.
    """
    if A.has_canonical_format:
        T = A.T.tocsr()
        if np.array_equal(A.indptr, T.indptr) and np.array_equal(A.indices, T.indices):
            return float(np.max(np.abs(A.data - T.data))) if A.nnz else 0.0
    D = abs(A - A.T)
    return float(D.max()) if D.nnz else 0.0


def check_finite_entries(A: Any) -> None:
    if is_torch(A):
        vals = A if torch_layout(A) == "strided" else torch_sparse_parts(A)[0].values()
        ok = bool(vals.isfinite().all())
    elif is_sparse(A):
        ok = bool(np.all(np.isfinite(A.data)))
    else:
        ok = bool(np.all(np.isfinite(A)))
    if not ok:
        raise ValueError("the matrix contains NaN or Inf entries")


def check_torch_tensor(A: Any) -> Any:
    """Refuse meta tensors and unsupported sparse layouts by name; coalesce COO tensors."""
    if A.is_meta:
        raise TypeError("a torch meta tensor has no data to multiply with; materialise it "
                        "first (e.g. module.to_empty(device='cpu') and load the weights)")
    layout = torch_layout(A)
    if layout != "strided" and layout not in TORCH_SPARSE:
        raise TypeError(f"torch tensors of layout {layout} are not supported; allowed: dense, "
                        "sparse_coo, sparse_csr, sparse_csc (convert with A.to_sparse_csr())")
    return A.coalesce() if layout == "sparse_coo" else A
