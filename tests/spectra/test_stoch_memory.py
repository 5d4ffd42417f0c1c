"""Estimator memory against its documented formula (issue 14, item 2), by tracemalloc.

The formula (:func:`spectra.stochtrace.core.memory_vectors`) counts ``n``-vectors in
the operator's dtype; the measured peak of one estimate must lie within 20% of it.
"""

import tracemalloc

import numpy as np
import pytest

from spectra import Operator, diagonal, trace
from spectra.stochtrace.core import _BLOCK_BYTES, memory_vectors

N = 100_000


def _diagonal_operator(dtype):
    d = np.linspace(1.0, 2.0, N).astype(dtype)
    return Operator.from_matvec(lambda v: d * v, (N, N), dtype=dtype, symmetric=True,
                                psd=True, matmat=lambda V: d[:, None] * V)


def _peak_vectors(fn, dtype):
    fn()  # warm-up: imports and caches are not the estimator's memory
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / (N * np.dtype(dtype).itemsize)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method,m,block", [("hutchinson", 20, None), ("hutchinson", 30, 4),
                                            ("xtrace", 40, None), ("xtrace", 60, 3),
                                            ("xtrace", 16, None), ("xnystrace", 20, None),
                                            ("xnystrace", 30, 7), ("hutchpp", 40, None),
                                            ("hutchpp", 60, 5)])
def test_trace_memory_within_20_percent_of_formula(dtype, method, m, block):
    op = _diagonal_operator(dtype)
    cap = max(1, _BLOCK_BYTES // (N * np.dtype(dtype).itemsize))
    formula = memory_vectors(method, m, N, cap if block is None else block)
    got = _peak_vectors(lambda: trace(op, m, method=method, block_size=block, rng=0), dtype)
    assert abs(got - formula) <= 0.2 * formula, (got, formula)


def test_hutchinson_diagonal_memory():
    op = _diagonal_operator(np.float64)
    formula = memory_vectors("hutchinson", 20, N, 5) + 4  # four float64 accumulators
    got = _peak_vectors(lambda: diagonal(op, 20, method="hutchinson", block_size=5, rng=0),
                        np.float64)
    assert abs(got - formula) <= 0.2 * formula, (got, formula)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m,block", [(40, None), (30, 4)])
def test_xdiag_memory(dtype, m, block):
    op = _diagonal_operator(dtype)
    cap = max(1, _BLOCK_BYTES // (N * np.dtype(dtype).itemsize))
    formula = memory_vectors("xdiag", m, N, cap if block is None else block,
                             np.dtype(dtype).itemsize)
    got = _peak_vectors(lambda: diagonal(op, m, block_size=block, rng=0), dtype)
    assert abs(got - formula) <= 0.2 * formula, (got, formula)
