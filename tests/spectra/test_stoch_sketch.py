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


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("layout", ["columns", "rows"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_extend_basis_in_place_updates_and_factors(layout, backend):
    # Y = Q0^T R_top + Qe R_b with Qe orthonormal and orthogonal to Q0, whatever the
    # layout of Y (products are stored column by column; dense numpy products by rows)
    # and whether the QR runs through LAPACK on a CPU tensor's numpy view.
    from spectra.stochtrace.core import extend_basis

    g = np.random.default_rng(0)
    n, k0, c = 300, 6, 4
    Q0 = np.linalg.qr(g.standard_normal((n, k0)))[0].T.copy()  # rows
    Y = g.standard_normal((n, c))
    Y[:, 1] += 5 * Q0[2]  # a column partly inside the basis
    Y0 = Y.copy()
    Yb = np.asfortranarray(Y) if layout == "columns" else np.ascontiguousarray(Y)
    A = np.eye(n)
    op_like = A if backend == "numpy" else torch.from_numpy(A)
    ctx, _ = _setup(op_like, 8, "xtrace", TRACE_METHODS, None, None, None, 0, "trace")
    if backend == "torch":
        Q0, Yb = torch.from_numpy(Q0), torch.from_numpy(Yb.copy(order="K"))
    Qe, Rtop, Rb = extend_basis(ctx, Q0, Yb, Yb)
    Qe, Q0 = np.asarray(Qe), np.asarray(Q0)
    np.testing.assert_allclose(Qe.T @ Qe, np.eye(c), atol=1e-12)
    np.testing.assert_allclose(Q0 @ Qe, 0.0, atol=1e-12)
    np.testing.assert_allclose(Q0.T @ Rtop + Qe @ Rb, Y0, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_projections_of_long_blocks_in_float64_chunks(backend):
    # past one chunk of rows the small projections are summed chunk by chunk in float64
    from spectra.backend import GEMV_CHUNK
    from spectra.stochtrace.core import project, subtract_span

    g = np.random.default_rng(1)
    n = 8 * GEMV_CHUNK + 123
    X, Y = g.standard_normal((5, n)).astype(np.float32), g.standard_normal((n, 3))
    Y = np.asfortranarray(Y.astype(np.float32))
    ref = X.astype(np.float64) @ Y.astype(np.float64)
    like = np.zeros((2, 2), np.float32) if backend == "numpy" else torch.zeros(2, 2)
    ctx, _ = _setup(like, 2, "xtrace", TRACE_METHODS, None, None, None, 0, "trace")
    ctx.n = n
    Xb, Yb = (X, Y) if backend == "numpy" else (torch.from_numpy(X), torch.from_numpy(Y))
    got = project(ctx, Xb, Yb)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4 * np.abs(ref).max())
    C = g.standard_normal((5, 3))
    want = Y.astype(np.float64) - X.T.astype(np.float64) @ C
    subtract_span(ctx, Yb, Xb, C)  # Y -= X^T C, in place
    np.testing.assert_allclose(np.asarray(Yb), want, rtol=1e-5, atol=1e-4)
