"""Memory of eigsh and lanczos against the formulas in their docstrings (issue 14).

Peak traced memory (tracemalloc sees numpy's allocations) in n-vectors of the
operator's dtype, after a warm-up call (Numba compiles on the first one).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import spectra.krylov._basis as basis_mod
from spectra import as_operator, eigsh, lanczos

N = 40_000


@pytest.fixture(scope="module")
def op():
    d = np.linspace(0.0, 1.0, N)
    d[-3:] = [1.3, 1.4, 1.5]
    return as_operator(sp.diags(d).tocsr())


def _peak_vectors(fn, itemsize=8):
    fn()  # warm-up: compilation and caches
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak / (itemsize * N)


@pytest.mark.parametrize("k,ncv", [(2, 30), (10, 40)])
def test_eigsh_peak_memory_matches_formula(op, k, ncv):
    # documented: 2 ncv + 2 k + 5 n-vectors (basis ncv + 1, its stored products ncv,
    # scratch, product, Ritz vectors and their products)
    got = _peak_vectors(lambda: eigsh(op, k, ncv=ncv, rng=0, tol=1e-6, check_copies=False))
    formula = 2 * ncv + 2 * k + 5
    assert abs(got - formula) <= 0.2 * formula, (got, formula)


def test_eigsh_memory_without_stored_products(op, monkeypatch):
    # above STORE_LIMIT numbers the products are not stored: ncv + 2 k + 5 n-vectors,
    # and the residual check costs k products
    k, ncv = 2, 30
    stored = eigsh(op, k, ncv=ncv, rng=0, tol=1e-6, check_copies=False)
    monkeypatch.setattr(basis_mod, "STORE_LIMIT", 0)
    got = _peak_vectors(lambda: eigsh(op, k, ncv=ncv, rng=0, tol=1e-6, check_copies=False))
    formula = ncv + 2 * k + 5
    assert abs(got - formula) <= 0.2 * formula, (got, formula)
    fresh = eigsh(op, k, ncv=ncv, rng=0, tol=1e-6, check_copies=False)
    assert fresh.num_matvecs == stored.num_matvecs + k
    np.testing.assert_allclose(fresh.eigenvalues, stored.eigenvalues, rtol=1e-12)


def test_eigsh_restarts_do_not_grow_memory(op):
    # thick restarts rotate the basis (and its stored products) in place: a run with
    # many restarts needs no more than one without
    one = _peak_vectors(lambda: eigsh(op, 2, ncv=60, rng=0, check_copies=False))
    many = _peak_vectors(lambda: eigsh(op, 2, ncv=12, rng=0, check_copies=False,
                                       max_matvecs=3000))
    assert many <= 2 * 12 + 2 * 2 + 5 + 0.2 * 33 and one > many


def test_eigsh_float32_basis_in_its_dtype():
    d = np.linspace(0.0, 1.0, N).astype(np.float32)
    op32 = as_operator(sp.diags(d).tocsr())
    got = _peak_vectors(lambda: eigsh(op32, 2, ncv=30, rng=0, tol=1e-4, check_copies=False),
                        itemsize=4)
    # the start vector is drawn in float64 (a handful of float64 vectors = 2 float32 each)
    assert got <= 1.2 * (2 * 30 + 2 * 2 + 5) + 4


@pytest.mark.parametrize("p", [1, 4])
def test_lanczos_peak_memory_matches_formula(op, p):
    # documented: p (num_steps + 4) n-vectors with reorth="full"
    v0 = np.random.default_rng(0).standard_normal((N, p))
    got = _peak_vectors(lambda: lanczos(op, 30, v0=v0))
    formula = p * (30 + 4)
    assert abs(got - formula) <= 0.2 * formula, (got, formula)
