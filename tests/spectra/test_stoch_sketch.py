"""The in-place XTrace / XDiag sketch: an orthonormal basis and exact projections."""

import numpy as np
import pytest

from spectra import diagonal, trace
from spectra.stochtrace import TRACE_METHODS
from spectra.stochtrace.core import _setup
from spectra.stochtrace.exchangeable import _Sketch
from spectra.testing import matrix_from_eigenvalues

N = 40
MATRICES = {
    "decaying": matrix_from_eigenvalues(0.5 ** np.arange(N), rng=0),
    "rank-3": matrix_from_eigenvalues(np.r_[3.0, 2.0, 1.0, np.zeros(N - 3)], rng=1),
    "zero": np.zeros((N, N)),
    "identity": np.eye(N),
}


@pytest.mark.parametrize("name", list(MATRICES))
@pytest.mark.parametrize("block", [1, 3, 50])
def test_sketch_basis_and_projections(name, block):
    A = MATRICES[name]
    ctx, _ = _setup(A, 24, "xtrace", TRACE_METHODS, None, None, block, 0, "trace")
    sk = _Sketch(ctx, 12, keep_z=True)
    sk.grow(5)
    sk.grow(12)
    Q, Z, Om = sk.Q, sk.Z, sk.Om
    np.testing.assert_allclose(Q.T @ Q, np.eye(12), atol=1e-12)
    p = sk.small()
    np.testing.assert_allclose(p["H"], Q.T @ A @ Q, atol=1e-12)
    np.testing.assert_allclose(p["W"], Q.T @ Om, atol=1e-12)
    np.testing.assert_allclose(p["T"], Z.T @ Om, atol=1e-11)
    np.testing.assert_allclose(Q @ p["R"], A @ Om, atol=1e-11)  # A Omega = Q R
    np.testing.assert_allclose(p["d"], np.einsum("ij,ij->j", Om, A @ Om), atol=1e-11)


@pytest.mark.parametrize("name", ["rank-3", "zero", "identity"])
def test_degenerate_operators_give_exact_finite_answers(name):
    A = MATRICES[name]
    est = trace(A, 20, rng=0)
    assert np.isfinite(est.value) and np.isfinite(est.stderr)
    assert est.value == pytest.approx(np.trace(A), abs=1e-10)
    if name != "identity":  # XDiag is exact below its rank, not on multiples of I
        d = diagonal(A, 20, rng=0)
        np.testing.assert_allclose(d.value, np.diag(A), atol=1e-10)
