import helpers
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectra import Operator, lanczos
from spectra.testing import matrix_from_eigenvalues


def test_lanczos_relation_and_orthogonality(spd_matrix):
    A, _ = spd_matrix
    res = lanczos(A, 40, rng=0)
    Q = res.basis[0].T  # (n, k)
    T = res.tridiagonal(0)
    k = res.steps[0]
    e_k = np.zeros(k)
    e_k[-1] = 1.0
    # A Q_k = Q_k T_k + beta_k q_{k+1} e_k^T  ->  residual is orthogonal to Q and has norm beta_k
    R = A @ Q - Q @ T
    np.testing.assert_allclose(np.linalg.norm(R, axis=0)[:-1], 0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(R[:, -1]), res.beta[0, k - 1], rtol=1e-10)
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=1e-12)


def test_breakdown_on_repeated_eigenvalues_is_reported():
    A = matrix_from_eigenvalues(np.repeat([1.0, 2.0, 5.0], 10), rng=0)
    res = lanczos(A, 20, rng=1)
    assert res.steps[0] == 3 and res.breakdown[0]
    np.testing.assert_allclose(res.ritz(0)[0], [1.0, 2.0, 5.0], rtol=1e-12)
    assert res.num_matvecs == 3


def test_batched_equals_one_at_a_time(spd_matrix):
    A, _ = spd_matrix
    V = np.random.default_rng(0).standard_normal((A.shape[0], 3))
    block = lanczos(A, 25, v0=V)
    for i in range(3):
        single = lanczos(A, 25, v0=V[:, i])
        np.testing.assert_allclose(block.alpha[i], single.alpha[0], rtol=1e-10)
        np.testing.assert_allclose(block.beta[i], single.beta[0], rtol=1e-10)


def test_no_reorth_gives_same_quadrature_with_ghosts(spd_matrix):
    A, lam = spd_matrix
    v = np.ones(A.shape[0])
    full = lanczos(A, 60, v0=v, reorth="full")
    none = lanczos(A, 60, v0=v, reorth="none")
    assert none.basis is None
    for f in (np.log, np.sqrt):
        qf = [np.sum(t**2 * f(th)) for th, t in (full.ritz(0), none.ritz(0))]
        exact = (v / np.linalg.norm(v)) @ (np.linalg.eigh(A)[1] * f(lam)) @ np.linalg.eigh(A)[1].T \
            @ (v / np.linalg.norm(v))
        np.testing.assert_allclose(qf, exact, rtol=1e-8)


def test_nan_from_matvec_names_the_step():
    calls = {"n": 0}

    def mv(v):
        calls["n"] += 1
        out = np.arange(1.0, 11.0) * v
        if calls["n"] == 4:
            out[0] = np.nan
        return out

    op = Operator.from_matvec(mv, (10, 10), dtype=np.float64, symmetric=True)
    with pytest.raises(ValueError, match=r"returned NaN or Inf \(product 4 of this operator\)"):
        lanczos(op, 8, v0=np.ones(10))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"num_steps": 0}, ValueError, r"\[1, 30\]"),
        ({"num_steps": 31}, ValueError, r"\[1, 30\]"),
        ({"num_steps": 2.5}, TypeError, "integer"),
        ({"num_steps": 5, "reorth": "partial"}, ValueError, "reorth"),
        ({"num_steps": 5, "v0": np.zeros(30)}, ValueError, "zero"),
        ({"num_steps": 5, "v0": np.ones(29)}, ValueError, "shape"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    A = matrix_from_eigenvalues(np.arange(30.0), rng=0)
    num_steps = kwargs.pop("num_steps")
    with pytest.raises(exc, match=match):
        lanczos(A, num_steps, **kwargs)


def test_non_symmetric_refused():
    with pytest.raises(ValueError, match="symmetric"):
        lanczos(np.triu(np.ones((5, 5))), 3)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=40),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_property_tridiagonal_spectrum_inside(n, dtype, seed):
    g = np.random.default_rng(seed)
    lam = np.sort(g.uniform(-3, 3, n))
    A = matrix_from_eigenvalues(lam, rng=g, dtype=dtype)
    k = int(g.integers(1, n + 1))
    res = lanczos(A, k, rng=g)
    theta, tau = res.ritz(0)
    tol = helpers.tol(dtype, scale=10)
    # Cauchy interlacing: Ritz values lie within the spectral interval.
    assert theta.min() >= lam[0] - tol * 3 and theta.max() <= lam[-1] + tol * 3
    np.testing.assert_allclose(np.sum(tau**2), 1.0, rtol=1e-10)
    assert res.steps[0] <= k
