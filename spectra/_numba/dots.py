r"""Numba core of the float64-accumulated inner product of long vectors (:func:`dot64`).

Used by :func:`spectra.backend.coldots` for long host vectors: one pass over both
vectors, products formed in float64 (exact for float32 entries) and summed in float64
with reassociation allowed, so that LLVM vectorises the loop (measured at ``n = 11.2``
million float32 entries, one thread: 6 ms against 17 ms for numpy's multiply and
pairwise float64 sum). Compiled once and cached on disk (``cache=True``); its plain
NumPy twin is in ``tests/spectra/test_kernels.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..backend import prefer_threadsafe_layer

prefer_threadsafe_layer()

__all__ = ["dot64"]


@njit(cache=True, fastmath={"reassoc", "contract"})
def dot64(x, y):  # pragma: no cover - compiled
    r""":math:`\sum_i x_i y_i` in float64 for 1-d float32 or float64 arrays ``x``, ``y``."""
    s = 0.0
    for i in range(x.shape[0]):
        s += np.float64(x[i]) * np.float64(y[i])
    return s
