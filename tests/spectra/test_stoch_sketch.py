"""The in-place XTrace / XDiag sketch: an orthonormal basis and exact projections."""

import numpy as np
import pytest

from spectra import Operator, diagonal, trace
from spectra.probes import draw
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


# ---------------------------------------------------------------------------- Cholesky QR


def _first_round(A, k, dtype=np.float64, keep_z=True):
    A = np.asarray(A, dtype=dtype)
    ctx, _ = _setup(A, 2 * k, "xtrace", TRACE_METHODS, None, None, None, 0, "trace")
    sk = _Sketch(ctx, k, keep_z=keep_z)
    sk.grow(k)
    return sk


@pytest.mark.parametrize("dtype,tail,path", [
    (np.float64, 0.5, "cholqr"), (np.float32, 0.5, "cholqr"),
    (np.float64, 1e-5, "cholqr"),  # kappa(A Omega) ~ 1e5 < 1 / (8 sqrt(eps64))
    (np.float32, 1e-5, "householder"),  # > 1 / (8 sqrt(eps32)) = 362: the fallback
    (np.float64, 0.0, "householder"), (np.float32, 0.0, "householder"),  # rank 5 < k
])
def test_first_round_cholqr_and_its_fallback(dtype, tail, path):
    # A Omega = Q R with Q orthonormal, H = Q^T A Q and W = Q^T Omega, whichever
    # factorisation the condition number of the sketch chose
    n, k = 300, 8
    A = matrix_from_eigenvalues(np.r_[np.linspace(2.0, 1.0, 5), np.full(n - 5, tail)], rng=3)
    sk = _first_round(A, k, dtype)
    assert sk.path == path
    Q, Om = sk.Q.astype(np.float64), sk.Om.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=tol)
    p = sk.small()
    np.testing.assert_allclose(Q @ p["R"], A @ Om, atol=30 * tol * np.abs(A @ Om).max())
    np.testing.assert_allclose(p["H"], Q.T @ A @ Q, atol=30 * tol)
    np.testing.assert_allclose(p["W"], Q.T @ Om, atol=30 * tol * np.abs(Om).max())
    np.testing.assert_allclose(p["d"], np.einsum("ij,ij->j", Om, A @ Om), rtol=100 * tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_implicit_second_step_matches_the_explicit_one(dtype):
    # nothing follows XTrace's only round: the second Cholesky QR step stays on the
    # k x k level (the products are taken with B = Q R2); the projections agree
    A = matrix_from_eigenvalues(1.0 / np.arange(1, 201), rng=4)
    exp, imp = _first_round(A, 10, dtype, keep_z=True), _first_round(A, 10, dtype, keep_z=False)
    assert exp.path == imp.path == "cholqr"
    a, b = exp.small(), imp.small()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for key in ("H", "W", "R", "d", "o2"):
        np.testing.assert_allclose(b[key], a[key], atol=tol * np.abs(a[key]).max())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_gram_and_transform_of_long_float32_rows(backend):
    # past one piece of rows: float32 products of the pieces summed in float64
    from spectra.stochtrace.sketch import PIECE, gram, transform

    g = np.random.default_rng(5)
    n, k = 6 * PIECE + 77, 6
    X = (g.standard_normal((k, n)) + 30.0).astype(np.float32)  # large means: cancellation
    Om = g.standard_normal((k, n)).astype(np.float32)
    T = np.tril(g.standard_normal((k, k))).astype(np.float32)
    X64, Om64, T64 = (a.astype(np.float64) for a in (X, Om, T))
    wrap = (lambda a: a) if backend == "numpy" else torch.from_numpy
    G = gram(wrap(X))
    assert G.dtype == np.float64
    np.testing.assert_allclose(G, X64 @ X64.T, rtol=2e-6)
    Xb = wrap(X.copy())
    GB, WB = transform(Xb, wrap(T), wrap(Om))
    B = T64 @ X64
    np.testing.assert_allclose(np.asarray(Xb), B, rtol=1e-5, atol=1e-5 * np.abs(B).max())
    np.testing.assert_allclose(GB, B @ B.T, rtol=1e-5, atol=1e-6 * np.abs(B @ B.T).max())
    np.testing.assert_allclose(WB, B @ Om64.T, atol=1e-6 * np.abs(B).max() * np.sqrt(n))


def test_float32_xtrace_with_a_large_trace_matches_float64():
    # 2 I + a decaying part at n = 200,000 (trace 4e5): the float32 estimate, from the
    # same probes (numpy probes do not depend on the dtype), agrees with float64 to
    # float32 accuracy, and both cover the truth
    n = 200_000
    lam = np.full(n, 2.0)
    lam[:30] += 50.0 / np.arange(1, 31)
    est = {}
    for dtype in (np.float64, np.float32):
        d = lam.astype(dtype)
        op = Operator.from_matvec(lambda v, d=d: d * v, (n, n), dtype=dtype, symmetric=True,
                                  matmat=lambda V, d=d: d[:, None] * V)
        est[dtype] = trace(op, 40, rng=7)
    e64, e32 = est[np.float64], est[np.float32]
    assert abs(e32.value - e64.value) <= 2e-6 * lam.sum()
    assert abs(e32.stderr - e64.stderr) <= 1e-3 * e64.stderr + 2e-6 * lam.sum()
    assert abs(e64.value - lam.sum()) <= 3 * e64.stderr


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_products_kept_in_place_unless_they_alias_the_probes(backend):
    # XTrace's only round keeps the operator's product blocks as its basis and factors
    # them in place; an operator that returns its input (here the identity) would alias
    # the test vectors, so its products are copied first: the answer stays exact
    n = 3000
    if backend == "numpy":
        ident = Operator.from_matvec(lambda v: v, (n, n), dtype=np.float64, symmetric=True,
                                     matmat=lambda V: V)
        d = np.linspace(1.0, 2.0, n)
        diag = Operator.from_matvec(lambda v: d * v, (n, n), dtype=np.float64,
                                    symmetric=True, matmat=lambda V: d[:, None] * V)
    else:
        ident = Operator.from_matvec(lambda v: v, (n, n), dtype=torch.float64,
                                     symmetric=True, matmat=lambda V: V)
        dt = torch.linspace(1.0, 2.0, n, dtype=torch.float64)
        diag = Operator.from_matvec(lambda v: dt * v, (n, n), dtype=torch.float64,
                                    symmetric=True, matmat=lambda V: dt[:, None] * V)
        d = dt.numpy()
    est = trace(ident, 20, rng=0)
    assert est.value == pytest.approx(n, rel=1e-12) and est.stderr < 1e-9 * n
    ctx, _ = _setup(ident, 20, "xtrace", TRACE_METHODS, None, None, None, 0, "trace")
    sk = _Sketch(ctx, 10, keep_z=False)
    sk.grow(10)  # the only round: implicit second step, products kept where they are
    want = draw("gaussian", n, 10, like=ident, rng=np.random.default_rng(0))
    assert np.array_equal(np.asarray(sk.Om), np.asarray(want))  # the probes survive
    est = trace(diag, 20, rng=0)
    ref = trace(np.diag(d), 20, rng=0) if backend == "numpy" else est
    assert est.value == pytest.approx(ref.value, rel=1e-12)
    assert abs(est.value - d.sum()) <= 3 * est.stderr
