"""Scale equivariance of eigsh and lanczos (issue 15, "Scale").

For ``c * P`` over the whole range where ``c * P``'s entries are normal numbers the
results must be ``c`` times those for ``P``: no false breakdown, no false "NaN or Inf"
from finite products, no residuals squared into zero.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectra import eigsh, lanczos
from spectra.testing import matrix_from_eigenvalues

LAM = np.linspace(1.0, 3.0, 50)


@pytest.fixture(scope="module")
def P():
    return matrix_from_eigenvalues(LAM, rng=0)


def _eig(A, k=2, **kw):
    return eigsh(A, k, tol=1e-10, rng=0, **kw)


def _same_eigsh(P, c, rtol=1e-9):
    ref, got = _eig(P), _eig(P * c)
    assert got.converged
    np.testing.assert_allclose(got.eigenvalues / c, ref.eigenvalues, rtol=rtol)
    np.testing.assert_allclose(got.eigenvalues / c, LAM[::-1][:2], rtol=rtol)
    # residuals: true ones, of the scaled problem, not squared into zero
    X = got.eigenvectors
    true = np.linalg.norm(((P * c) @ X - X * got.eigenvalues) / c, axis=0)  # no underflow
    assert np.all(got.residual_norms > 0)
    np.testing.assert_allclose(got.residual_norms / c, true, rtol=1e-3, atol=1e-14)


def _same_lanczos(P, c, rtol=1e-10):
    v0 = np.random.default_rng(3).standard_normal(P.shape[0])
    ref, got = lanczos(P, 12, v0=v0), lanczos(P * c, 12, v0=v0)
    assert got.steps[0] == 12 and not got.breakdown[0]
    np.testing.assert_allclose(got.alpha / c, ref.alpha, rtol=rtol)
    np.testing.assert_allclose(got.beta / c, ref.beta, rtol=rtol)


def test_eigsh_tiny_scale_issue_case(P):
    # issue 15: eigsh(P * 1e-200, k=2) returned 2.18e-200 for 2.93e-200, "converged",
    # with zero residuals
    _same_eigsh(P, 1e-200)


@pytest.mark.parametrize("c", [1e-300, 1e154])
def test_lanczos_no_false_breakdown(P, c):
    _same_lanczos(P, c)


@pytest.mark.parametrize("c", [1e155, 1e200, 1e300])
def test_no_false_non_finite_error_at_huge_scale(P, c):
    _same_eigsh(P, c)
    _same_lanczos(P, c)


@pytest.mark.parametrize("e", [-900, -500, 500, 900])
def test_power_of_two_scale_is_bitwise(P, e):
    c = 2.0**e
    ref, got = _eig(P), _eig(P * c)
    np.testing.assert_array_equal(got.eigenvalues, ref.eigenvalues * c)
    np.testing.assert_array_equal(got.eigenvectors, ref.eigenvectors)
    assert got.num_matvecs == ref.num_matvecs
    v0 = np.ones(P.shape[0])
    a, b = lanczos(P, 10, v0=v0), lanczos(P * c, 10, v0=v0)
    np.testing.assert_array_equal(b.alpha, a.alpha * c)


@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_dense_path_and_block_scale(P, c):
    small = matrix_from_eigenvalues([1.0, 2.0, 3.0], rng=0)
    res = eigsh(small * c, 3, which="SA")
    np.testing.assert_allclose(res.eigenvalues / c, [1, 2, 3], rtol=1e-12)
    assert np.all(np.isfinite(res.residual_norms))
    blk = eigsh(P * c, 2, tol=1e-10, rng=0, block_size=2)
    assert blk.converged
    np.testing.assert_allclose(blk.eigenvalues / c, LAM[::-1][:2], rtol=1e-9)


def test_tiny_and_huge_start_vectors(P):
    for s in (1e-300, 1e300):
        res = _eig(P, v0=np.full(P.shape[0], s))
        np.testing.assert_allclose(res.eigenvalues, LAM[::-1][:2], rtol=1e-9)
        lz = lanczos(P, 5, v0=np.full(P.shape[0], s))
        np.testing.assert_allclose(lz.start_norms, s * np.sqrt(P.shape[0]), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(t=st.floats(-250.0, 250.0))
def test_scale_equivariance_property(P, t):
    c = 10.0**t
    _same_eigsh(P, c, rtol=1e-8)
    _same_lanczos(P, c, rtol=1e-8)


@pytest.mark.parametrize("c", [1e-30, 1e30])
def test_float32_scale(P, c):
    P32 = P.astype(np.float32)
    res = eigsh(P32 * np.float32(c), 2, tol=1e-5, rng=0)
    assert res.converged and res.eigenvectors.dtype == np.float32
    np.testing.assert_allclose(res.eigenvalues / c, LAM[::-1][:2], rtol=1e-5)
    lz = lanczos(P32 * np.float32(c), 8, rng=0)
    ref = lanczos(P32, 8, rng=0)
    assert lz.steps[0] == 8
    np.testing.assert_allclose(lz.alpha / c, ref.alpha, rtol=1e-5)
