"""Gramians and Hankel singular values against dense scipy references on small systems."""

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from spectra import ConvergenceWarning, Operator, eigsh
from spectra.gramians import gramian, hankel_singular_values

N = 40


def _stable(n, seed, discrete=False):
    """A non-symmetric stable matrix (Hurwitz, or Schur with radius 0.9)."""
    g = np.random.default_rng(seed)
    M = g.standard_normal((n, n)) / np.sqrt(n)
    lam = np.linalg.eigvals(M)
    if discrete:
        return 0.9 * M / np.abs(lam).max()
    return M - (lam.real.max() + 0.5) * np.eye(n)


def _system(seed=0, discrete=False, n=N, p=2, q=3):
    g = np.random.default_rng(seed + 100)
    return _stable(n, seed, discrete), g.standard_normal((n, p)), g.standard_normal((q, n))


def _dense_gramian(A, X, kind, discrete):
    """scipy reference; X is B for controllability and C for observability."""
    M, F = (A, X) if kind == "controllability" else (A.T, X.T)
    if discrete:
        return sla.solve_discrete_lyapunov(M, F @ F.T)
    return sla.solve_continuous_lyapunov(M, -F @ F.T)


def _rel(G, W):
    return np.linalg.norm(G.factor @ G.factor.T - W) / np.linalg.norm(W)


def _psd_sqrt(W):
    w, V = np.linalg.eigh((W + W.T) / 2)
    return V * np.sqrt(np.clip(w, 0, None))


def _heat(m):
    """2-D heat equation on an m x m grid: symmetric A, a localised source, a patch mean."""
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    A = -(sp.kron(T, sp.identity(m)) + sp.kron(sp.identity(m), T)).tocsr() * (m + 1) ** 2
    x = np.arange(1, m + 1) / (m + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    b = np.exp(-((X - 0.3) ** 2 + (Y - 0.3) ** 2) / 0.005).ravel()
    c = ((X > 0.6) & (Y > 0.6)).ravel() / 1.0
    return A, b / b.sum(), c / c.sum()


# ------------------------------------------------------------------------ against scipy
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("kind", ["controllability", "observability"])
@pytest.mark.parametrize("method", ["dense", "krylov", "adi"])
def test_gramian_matches_scipy_lyapunov(method, kind, discrete):
    A, B, C = _system(1, discrete)
    X = B if kind == "controllability" else C
    G = gramian(A, X, kind=kind, method=method, discrete=discrete, rng=0)
    W = _dense_gramian(A, X, kind, discrete)
    assert G.converged and G.method == method
    assert _rel(G, W) < 1e-8, (_rel(G, W), G.message)
    assert G.relative_residual < 1e-9
    # residual_norm is the true residual of the returned factor
    ZZ = G.factor @ G.factor.T
    M, F = (A, B) if kind == "controllability" else (A.T, C.T)
    R = M @ ZZ @ M.T - ZZ + F @ F.T if discrete else M @ ZZ + ZZ @ M.T + F @ F.T
    assert np.isclose(G.residual_norm, np.linalg.norm(R), rtol=1e-3, atol=1e-13)


@pytest.mark.parametrize("discrete", [False, True])
def test_krylov_arnoldi_residual_is_the_true_residual(discrete):
    # the last history entry comes from the Arnoldi relation alone, without products
    A, B, _ = _system(2, discrete)
    G = gramian(A, B, method="krylov", discrete=discrete, tol=1e-4, rng=0)
    assert G.history.size >= 1 and G.history[-1] <= 1e-4
    assert np.isclose(G.history[-1], G.relative_residual, rtol=1e-6)
    assert G.rank < N  # stopped well before the whole space


@pytest.mark.parametrize("kind", ["controllability", "observability"])
def test_sparse_linear_operator_and_torch_inputs(kind):
    A, B, C = _system(3)
    X = B if kind == "controllability" else C
    W = _dense_gramian(A, X, kind, False)
    for AA, method in [(sp.csr_matrix(A), "adi"), (aslinearoperator(A), "krylov"),
                       (sp.csr_matrix(A), "krylov")]:
        G = gramian(AA, X, kind=kind, method=method, rng=0)
        assert _rel(G, W) < 1e-8, type(AA)
    # an explicit float32 matrix is solved in float64 (the Gramian of its exact values)
    A32 = A.astype(np.float32)
    G = gramian(sp.csr_matrix(A32), X, kind=kind, method="adi", rng=0)
    assert G.converged and _rel(G, _dense_gramian(A32.astype(float), X, kind, False)) < 1e-8
    torch = pytest.importorskip("torch")
    G = gramian(torch.from_numpy(A), torch.from_numpy(X), kind=kind, method="krylov", rng=0)
    assert _rel(G, W) < 1e-8


def test_symmetric_operator_needs_no_transpose_and_gets_wachspress_shifts():
    A, b, c = _heat(12)
    Ad = A.toarray()
    op = Operator.from_matvec(lambda v: A @ v, A.shape, dtype=np.float64, symmetric=True,
                              matmat=lambda V: A @ V)
    G = gramian(op, c, kind="observability", method="krylov", rng=0)
    assert _rel(G, _dense_gramian(Ad, c[None, :], "observability", False)) < 1e-8
    G = gramian(A, b, method="adi", rng=0)
    assert np.all(G.shifts.imag == 0) and np.all(G.shifts.real < 0)
    assert _rel(G, _dense_gramian(Ad, b[:, None], "controllability", False)) < 1e-8


def test_penzl_shifts_are_complex_for_a_non_normal_matrix():
    A, B, _ = _system(4)
    G = gramian(A, B, method="adi", shifts="penzl", rng=0)
    assert np.any(G.shifts.imag != 0)
    assert _rel(G, _dense_gramian(A, B, "controllability", False)) < 1e-8


def test_user_solve_is_called_with_transpose_for_observability():
    A, B, C = _system(5)
    calls = []

    def solve(p, X, transpose):
        calls.append(transpose)
        return np.linalg.solve((A.T if transpose else A) + p * np.eye(N), X)

    L = LinearOperator(A.shape, matvec=lambda v: A @ v, rmatvec=lambda v: A.T @ v,
                       dtype=np.float64)
    for kind, X in (("controllability", B), ("observability", C)):
        calls.clear()
        G = gramian(L, X, kind=kind, method="adi", solve=solve, rng=0)
        assert set(calls) == {kind == "observability"}
        assert G.num_solves > 0
        assert _rel(G, _dense_gramian(A, X, kind, False)) < 1e-8


def test_discrete_adi_with_the_cayley_shift_minus_one():
    # shift -1 of the Cayley transform is the special branch (M - I)^{-1} = -(A + I)/2
    A, B, _ = _system(6, discrete=True)
    G = gramian(A, B, method="adi", discrete=True, shifts=[-1.0, -0.5, -0.2], rng=0)
    assert _rel(G, _dense_gramian(A, B, "controllability", True)) < 1e-8


def test_rank_deficient_input_block_and_invariant_subspace():
    A, B, _ = _system(7, n=12)
    B2 = np.hstack([B, B[:, :1]])  # dependent column: block Arnoldi deflates
    G = gramian(A, B2, method="krylov", rng=0)
    assert G.converged and _rel(G, _dense_gramian(A, B2, "controllability", False)) < 1e-8


# ------------------------------------------------------------------------ results
def test_factor_operator_eigenvalues_and_rank_cap():
    A, B, _ = _system(8)
    W = _dense_gramian(A, B, "controllability", False)
    lam = np.linalg.eigvalsh(W)[::-1]
    G = gramian(A, B, method="krylov", rng=0)
    assert np.allclose(G.eigenvalues[:10], lam[:10], rtol=1e-8)
    assert np.isclose(G.trace(), np.trace(W), rtol=1e-9)
    v = np.random.default_rng(0).standard_normal(N)
    assert np.allclose(G.matvec(v), W @ v, atol=1e-9 * np.linalg.norm(W))
    top = eigsh(G.as_operator(), 2, which="LA", rng=0)
    assert np.allclose(top.eigenvalues, lam[:2], rtol=1e-8)
    G3 = gramian(A, B, method="adi", rank=3, rng=0)
    assert G3.rank == 3 and "rank 3" in G3.message
    best = np.linalg.norm(W - _psd_sqrt(W)[:, -3:] @ _psd_sqrt(W)[:, -3:].T)
    assert np.linalg.norm(G3.factor @ G3.factor.T - W) <= 1.001 * best + 1e-12
    with pytest.raises(ValueError, match="matvec expects"):
        G.matvec(np.ones(N + 1))


def test_budget_exhausted_warns_and_reports():
    A, B, _ = _system(9)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        G = gramian(A, B[:, :1], method="krylov", max_matvecs=6, rng=0)
    assert not G.converged and G.relative_residual > 1e-10 and "basis limit" in G.message
    with pytest.warns(ConvergenceWarning):
        G = gramian(A, B, method="adi", max_solves=4, rng=0)
    assert not G.converged and G.num_solves <= 4 + 40  # (the Ritz runs solve too)


# ------------------------------------------------------------------------ Hankel values
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("method", ["dense", "krylov", "adi"])
def test_hankel_singular_values_match_dense_square_root(method, discrete):
    A, B, C = _system(10, discrete)
    Lc = _psd_sqrt(_dense_gramian(A, B, "controllability", discrete))
    Lo = _psd_sqrt(_dense_gramian(A, C, "observability", discrete))
    ref = np.linalg.svd(Lo.T @ Lc, compute_uv=False)
    hsv = hankel_singular_values(A, B, C, method=method, discrete=discrete, rng=0)
    k = int(np.sum(ref > 1e-6 * ref[0]))
    assert k >= 10 and len(hsv.values) >= k
    assert np.allclose(hsv.values[:k], ref[:k], rtol=1e-7), hsv.values[:k] / ref[:k] - 1
    assert np.all(np.diff(hsv.values) <= 0) and hsv.converged
    assert hsv.num_matvecs == (hsv.controllability.num_matvecs
                               + hsv.observability.num_matvecs)


def test_truncation_bound_holds_for_balanced_truncation():
    """2 * (sum of discarded values) bounds the sampled H-infinity error of the truncation."""
    A, B, C = _system(11, n=30)
    hsv = hankel_singular_values(A, B, C, method="krylov", rng=0)
    s = hsv.values
    assert np.allclose(hsv.truncation_bounds, [2 * s[r:].sum() for r in range(len(s) + 1)])
    U, sig, Vt = np.linalg.svd(hsv.observability.factor.T @ hsv.controllability.factor)
    w = np.logspace(-2, 2, 400)
    for r in (2, 5, 8):
        T = hsv.controllability.factor @ Vt[:r].T / np.sqrt(sig[:r])
        Wl = hsv.observability.factor @ U[:, :r] / np.sqrt(sig[:r])
        Ar, Br, Cr = Wl.T @ A @ T, Wl.T @ B, C @ T
        err = max(np.linalg.norm(C @ np.linalg.solve(1j * x * np.eye(30) - A, B)
                                 - Cr @ np.linalg.solve(1j * x * np.eye(r) - Ar, Br), 2)
                  for x in w)
        assert s[r] <= err <= hsv.error_bound(r), (r, err, hsv.error_bound(r))
    with pytest.raises(ValueError, match="r must be in"):
        hsv.error_bound(len(s) + 1)


# ------------------------------------------------------------------------ bad input
def test_unstable_matrices_are_refused_with_the_eigenvalue():
    A, B, _ = _system(12)
    bad = A + 1.0 * np.eye(N)
    with pytest.raises(ValueError, match=r"not stable.*Hurwitz.*exact eigenvalue"):
        gramian(bad, B, method="dense")
    Ah, b, _ = _heat(10)
    shifted = Ah + 30.0 * sp.identity(100)  # lambda_max = 30 - 2 pi^2 ~ 10 > 0
    for method in ("krylov", "adi"):
        with pytest.raises(ValueError, match="not stable.*symmetric A"):
            gramian(shifted, b, method=method, rng=0)
    with pytest.raises(ValueError, match=r"Schur.*\|lambda\| = 1.1"):
        gramian(np.diag(np.linspace(-0.5, 1.1, 20)), np.ones(20), discrete=True)
    for method in ("krylov", "adi"):  # non-symmetric, unstable pair found with a tiny residual
        with pytest.raises(ValueError, match="not stable"):
            gramian(bad, B, method=method, discrete=False, rng=0)


def test_bad_shapes_values_and_options():
    A, B, C = _system(13)
    with pytest.raises(ValueError, match=r"B must have shape \(40, p\)"):
        gramian(A, np.ones((N + 1, 2)))
    with pytest.raises(ValueError, match="pass C, not C.T"):
        gramian(A, C.T, kind="observability")
    with pytest.raises(ValueError, match="NaN"):
        gramian(A, np.full(N, np.nan))
    with pytest.raises(ValueError, match="NaN or Inf"):
        gramian(np.where(np.eye(N) > 0, np.nan, A), B)
    with pytest.raises(ValueError, match="square"):
        gramian(np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match="is zero"):
        gramian(A, np.zeros(N))
    with pytest.raises(ValueError, match="kind"):
        gramian(A, B, kind="reachability")
    with pytest.raises(ValueError, match="method"):
        gramian(A, B, method="bartels")
    with pytest.raises(ValueError, match="tol"):
        gramian(A, B, tol=0.0)
    with pytest.raises(TypeError, match="rank"):
        gramian(A, B, rank=2.5)
    with pytest.raises(ValueError, match="negative real part"):
        gramian(A, B, method="adi", shifts=[1.0])
    with pytest.raises(ValueError, match="conjugates"):
        gramian(A, B, method="adi", shifts=[-1 + 1j])
    with pytest.raises(ValueError, match="shifted solves"):
        gramian(aslinearoperator(A), B, method="adi")
    with pytest.raises(TypeError, match="rmatvec"):
        gramian(LinearOperator(A.shape, matvec=lambda v: A @ v, dtype=np.float64), C,
                kind="observability", method="krylov")
    op = Operator.from_matvec(lambda v: A @ v, A.shape, dtype=np.float64)
    with pytest.raises(TypeError, match="neither symmetric nor transposable"):
        gramian(op, C, kind="observability", rng=0)
    with pytest.raises(TypeError, match="solve must be callable"):
        gramian(A, B, solve=3)
    with pytest.raises(ValueError, match="at least the number of columns of B"):
        gramian(A, B, method="krylov", max_matvecs=1)


def test_plot_hankel_singular_values(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectra import plot

    A, B, C = _system(14, n=20)
    hsv = hankel_singular_values(A, B, C, method="dense")
    ax = plot.hankel_singular_values(hsv, reference=hsv.values)
    ys = [line.get_ydata() for line in ax.get_lines()]
    assert any(np.array_equal(y, hsv.values) for y in ys)
    assert any(np.array_equal(y, hsv.truncation_bounds[1:-1]) for y in ys)  # (last is 0)
    assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    ax.figure.savefig(tmp_path / "h.png")
    plt.close("all")
    with pytest.raises(TypeError, match="HankelResult"):
        plot.hankel_singular_values(hsv.values)
