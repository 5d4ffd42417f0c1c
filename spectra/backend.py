"""Array-backend helpers shared by every package (numpy or torch, CPU or GPU).

Vectors stay in the namespace and on the device of the operator; only scalars and
small projected matrices come to the host as float64 numpy arrays. Also the one
switch that keeps Numba's parallel kernels off torch's OpenMP pool
(:func:`prefer_threadsafe_layer`), called by every compiled-core module before it
imports Numba.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

#: Relative tolerances keyed by the working precision (``numpy`` dtype name).
#: Used for symmetry checks, breakdown detection and in the tests.
TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {"rtol": 1e-10, "atol": 1e-12, "sym": 1e-10},
    "float32": {"rtol": 1e-4, "atol": 1e-5, "sym": 1e-4},
}


def is_torch(x: Any) -> bool:
    """Return whether ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(x: Any):
    """Return the array-API namespace of ``x`` (numpy or torch, through array-api-compat)."""
    from array_api_compat import array_namespace

    return array_namespace(x)


def dtype_name(dtype: Any) -> str:
    """Return ``"float32"``/``"float64"`` etc. for a numpy or torch dtype."""
    if hasattr(dtype, "is_floating_point"):  # torch.dtype
        return str(dtype).replace("torch.", "")
    return np.dtype(dtype).name


def tolerance(dtype: Any) -> dict[str, float]:
    """Return the tolerance entry for a dtype (float32 or float64).

    Parameters
    ----------
    dtype : numpy or torch dtype
        A real floating dtype.

    Returns
    -------
    dict
        Keys ``rtol``, ``atol`` and ``sym`` (relative tolerance of the symmetry test).
    """
    name = dtype_name(dtype)
    if name not in TOLERANCES:
        raise TypeError(f"unsupported dtype {name}; allowed: float32, float64")
    return TOLERANCES[name]


def eps(dtype: Any) -> float:
    """Machine epsilon of a numpy or torch floating dtype."""
    return float(np.finfo(dtype_name(dtype)).eps)


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array (numpy or torch, any device) to a host float64 numpy array."""
    if is_torch(x):
        return x.detach().to("cpu", dtype=_torch().float64).numpy()
    return np.asarray(x, dtype=np.float64)


#: Length from which host columns are reduced by the compiled :func:`~spectra._numba.dots.dot64`.
_DOT64_MIN = 1 << 16


def coldots(X: Any, Y: Any) -> np.ndarray:
    """Column-wise dot products ``sum_i X[i, j] Y[i, j]``, accumulated in float64.

    ``X`` and ``Y`` are ``(n, k)`` (or 1-d) arrays of one namespace and dtype. Works one
    column at a time and never forms an ``n x k`` float64 copy: host columns (numpy,
    and CPU torch through a zero-copy numpy view) of ``n >= 65536`` entries go through
    the compiled :func:`~spectra._numba.dots.dot64` (one pass, products and sum in
    float64), shorter ones through an ``n``-vector product in their dtype summed
    pairwise in float64; CUDA tensors reduce on the device in float64 (one transfer).

    Returns
    -------
    ndarray of float64, shape ``(k,)`` (``()`` for vectors)
    """
    one = X.ndim == 1
    if one:
        X, Y = X[:, None], Y[:, None]
    k = X.shape[1]
    out = np.empty(k)
    if is_torch(X):
        torch = _torch()
        X, Y = X.detach(), Y.detach()
        if X.device.type != "cpu":  # on the device, one transfer for the k sums
            sums = [torch.sum(X[:, j] * Y[:, j], dtype=torch.float64) for j in range(k)]
            out[:] = torch.stack(sums).cpu().numpy()
            return out[0] if one else out
        X, Y = X.numpy(), Y.numpy()
    if X.shape[0] >= _DOT64_MIN and X.dtype == Y.dtype and X.dtype in (np.float32, np.float64):
        from ._numba.dots import dot64

        for j in range(k):
            out[j] = dot64(X[:, j], Y[:, j])
        return out[0] if one else out
    tmp = np.empty(X.shape[0], dtype=np.result_type(X.dtype, Y.dtype))
    for j in range(k):
        np.multiply(X[:, j], Y[:, j], out=tmp)
        out[j] = np.add.reduce(tmp, dtype=np.float64)
    return out[0] if one else out


#: Entries per float32 partial sum of :func:`rowdots` for one row and a vector.
DOT_CHUNK = 256
#: Entries per float32 partial product of :func:`rowdots` otherwise.
GEMV_CHUNK = 4096


def rowdots(X: Any, Y: Any) -> np.ndarray:
    """``X @ Y`` (rows ``X`` ``(a, n)``; ``Y`` ``(n,)`` or ``(n, b)``) as host float64 numbers.

    The one reduction over the long dimension for bases stored as rows (the Lanczos
    coefficients of :func:`spectra.eigsh`, the projected matrices of the sketches). In
    float64, or for ``n < 2 GEMV_CHUNK``: one product. In a narrower dtype, partial
    products in that dtype added in float64: over pieces of :data:`GEMV_CHUNK` entries,
    or of :data:`DOT_CHUNK` for one row and a vector (one ``einsum`` on a view; a
    batched product on a device, one transfer); a device matrix ``Y`` takes one product.
    CPU torch tensors are read through their zero-copy numpy views. One float32 BLAS
    call over the whole length rounds like ``eps sqrt(n)`` or worse: on a float32
    ResNet Hessian (``n = 177,362``) the Lanczos relation was then off by 50
    ``eps ||A||`` and the explicit residual stagnated six times above ``tol = 1e-6``
    (tests/spectra/test_krylov_float32.py). Measured at ``n = 11.2`` million, 20 rows,
    float32, a vector with a few large entries: errors relative to ``||w||`` of ``3e-6``
    in one call, ``1.5e-7`` over pieces of ``2**15``, ``5e-8`` over pieces of 256;
    pieces of 4096 cost about 5% over one call (40 rows: 257 against 243 ms), batched
    pieces of 256 up to 1.6x (benchmarks/results/hessian_scale_trace.md).
    """
    n, rows, vec = Y.shape[0], X.shape[0], Y.ndim == 1
    shape = (rows,) if vec else (rows, Y.shape[1])
    numpy = isinstance(Y, np.ndarray)
    if Y.dtype.itemsize >= 8 or n < 2 * GEMV_CHUNK:
        return to_numpy(X @ Y).reshape(shape)
    if not numpy and Y.device.type == "cpu" and str(Y.dtype) == "torch.float32":
        X, Y, numpy = X.detach().numpy(), Y.detach().numpy(), True  # (no numpy bfloat16)
    if numpy and not vec or numpy and rows > 1:
        acc = np.zeros(shape)
        for lo in range(0, n, GEMV_CHUNK):
            acc += X[:, lo:lo + GEMV_CHUNK] @ Y[lo:lo + GEMV_CHUNK]
        return acc
    if not vec:
        return to_numpy(X @ Y)
    q = n // DOT_CHUNK
    m = q * DOT_CHUNK
    if numpy:
        part = np.einsum("qc,qc->q", X[0, :m].reshape(q, DOT_CHUNK), Y[:m].reshape(q, DOT_CHUNK))
        return np.array([part.sum(dtype=np.float64) + float(np.dot(X[0, m:], Y[m:]))])
    torch = _torch()
    P = torch.bmm(X[:, :m].reshape(rows, q, DOT_CHUNK).transpose(0, 1),
                  Y[:m].reshape(q, DOT_CHUNK, 1))
    return to_numpy(P[:, :, 0].sum(dim=0, dtype=torch.float64) + (X[:, m:] @ Y[m:]).double())


def power_of_two(m: float) -> float:
    """The power of two ``2**e`` with ``2**(e-1) <= m < 2**e`` (``e`` clamped to ±1000).

    The one rescaling unit of the library: multiplying or dividing by it is exact in
    floating point, so a run on ``A / 2**e`` gives exactly ``2**-e`` times the results of
    ``A``. ``1.0`` for zero, NaN or infinite ``m`` (nothing to rescale, or a value the
    caller must reject); the clamp keeps ``2**e`` and ``2**-e`` finite normal numbers.
    """
    if m == 0.0 or not math.isfinite(m):
        return 1.0
    return math.ldexp(1.0, max(-1000, min(1000, math.frexp(m)[1])))


def absmax(x: Any) -> float:
    """``max |x_i|`` as a Python float, without an ``|x|`` temporary.

    NaN when an entry is NaN, ``inf`` when one is infinite. CPU tensors are reduced
    through a zero-copy numpy view (numpy's min/max are several times faster than
    ``torch.aminmax`` on one thread).
    """
    if is_torch(x):
        if x.numel() == 0:
            return 0.0
        x = x.detach()
        if x.device.type == "cpu":
            x = x.numpy()
        else:
            lo, hi = x.aminmax()
            lo, hi = float(lo), float(hi)
            return float("nan") if math.isnan(lo) or math.isnan(hi) else max(-lo, hi)
    if x.size == 0:
        return 0.0
    lo, hi = float(np.min(x)), float(np.max(x))
    return float("nan") if math.isnan(lo) or math.isnan(hi) else max(-lo, hi)


def _torch():
    import torch

    return torch


def from_numpy(x: np.ndarray, *, like: Any = None, dtype: Any = None, device: Any = None):
    """Move a host numpy array into the namespace, dtype and device of ``like``.

    ``like`` may be an array or an :class:`~spectra.Operator` (anything with ``dtype``
    and ``device`` and an ``xp`` attribute).
    """
    torch_like = is_torch(like) or getattr(like, "backend", None) == "torch"
    if dtype is None and like is not None:
        dtype = like.dtype
    if device is None and like is not None:
        device = getattr(like, "device", None)
    if torch_like:
        torch = _torch()
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)
    return np.asarray(x, dtype=dtype)


def prefer_threadsafe_layer() -> None:
    """Keep Numba's parallel kernels off the OpenMP runtime that torch shares.

    Numba's ``omp`` threading layer resizes the process-wide OpenMP pool on its first
    parallel launch, which silently changes ``torch.get_num_threads()`` (e.g. from the
    ``OMP_NUM_THREADS=1`` a user asked for to the core count). Unless the user chose a
    layer through Numba's own environment variables, prefer TBB, then Numba's built-in
    work queue, and only then OpenMP. Compiled-core modules call it at import, before
    any parallel launch; it imports Numba itself.
    """
    if "NUMBA_THREADING_LAYER" in os.environ or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return
    import numba

    numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]
