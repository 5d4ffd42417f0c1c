"""Memory of deflated SLQ against the formula in :func:`spectra.quadrature._deflated`.

Peak traced memory (tracemalloc sees numpy's allocations) in n-vectors, after a warm-up
call (Numba compiles on the first one).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from spectra import as_operator
from spectra.quadrature import slq_measure

N = 40_000


@pytest.mark.parametrize("reorth", ["none", "full"])
def test_deflated_slq_peak_memory_matches_formula(reorth):
    d = np.linspace(0.0, 1.0, N)
    d[-3:] = [30.0, 40.0, 50.0]  # outliers that the pilot deflates
    op = as_operator(sp.diags(d).tocsr())
    k, p = 30, 5

    def run():
        return slq_measure(op, num_probes=p, num_steps=k, reorth=reorth, deflate=True, rng=0)

    run()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        m = run()
        got = (tracemalloc.get_traced_memory()[1] - base) / (8 * N)
    finally:
        tracemalloc.stop()
    c = m.deflated.size
    assert c >= 1
    lanczos_rest = 4 * (p - 1) if reorth == "none" else (k + 4) * (p - 1)
    formula = max(k + 4 + p, p + c + (p - 1) + lanczos_rest)
    assert abs(got - formula) <= 0.2 * formula, (got, formula)
