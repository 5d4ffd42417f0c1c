"""Issue 15 cases for operators, trace/diagonal, probes and validation: one table.

Each row is a call that used to give a wrong answer, a NaN, a false ``converged=True``
or an error of the wrong type or with a message that did not name the problem, and the
outcome it must have now. Scale equivariance of :func:`spectra.trace` is a hypothesis
property at the end.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import same_probes
from hypothesis import given, settings
from hypothesis import strategies as st

from spectra import ConvergenceWarning, Operator, as_operator, diagonal, trace
from spectra.operators import kernel_operator
from spectra.results import NonFiniteError
from spectra.testing import matrix_from_eigenvalues

torch = pytest.importorskip("torch")

LAM = np.linspace(1.0, 3.0, 30)
P = matrix_from_eigenvalues(LAM, rng=0)


def _returning(fn, n=6, dtype=np.float64):
    return Operator.from_matvec(fn, (n, n), dtype=dtype, symmetric=True)


def _huge(n):
    def mv(v):  # never reached: the size check comes first
        raise AssertionError("the matvec was called")

    return Operator.from_matvec(mv, (n, n), dtype=np.float64, symmetric=True)


# ----------------------------------------------------------------- errors (call, exc, match)
ERRORS = {
    # matvec output checks (in the operator layer, once)
    "complex-return": (lambda: _returning(lambda v: v + 1j * v).matvec(np.ones(6)),
                       TypeError, "complex"),
    "int-return": (lambda: _returning(lambda v: np.ones(6, dtype=np.int64)).matvec(np.ones(6)),
                   TypeError, "int64"),
    "float16-return": (lambda: _returning(lambda v: v.astype(np.float16)).matvec(np.ones(6)),
                       TypeError, "float16"),
    "object-return": (lambda: _returning(lambda v: v.astype(object)).matvec(np.ones(6)),
                      TypeError, "object"),
    "scalar-return": (lambda: _returning(lambda v: 1.0).matvec(np.ones(6)), TypeError,
                      "returned float"),
    "none-return": (lambda: _returning(lambda v: None).matvec(np.ones(6)), TypeError,
                    "returned None"),
    "list-return": (lambda: _returning(lambda v: list(v)).matvec(np.ones(6)), TypeError,
                    "returned list"),
    "complex-matmat-block2": (lambda: trace(_returning(lambda v: v + 0j), 4, block_size=2,
                                            rng=0), TypeError, "complex"),
    "nan-return": (lambda: trace(_returning(lambda v: v * np.nan), 4, rng=0), NonFiniteError,
                   "product"),
    "inf-matmat": (lambda: _returning(lambda v: v, 6).matmat(np.full((6, 2), np.inf)),
                   NonFiniteError, "matmat"),
    "torch-complex-return": (lambda: Operator.from_matvec(
        lambda v: v.to(torch.complex128), (4, 4), dtype=torch.float64).matvec(
        torch.ones(4, dtype=torch.float64)), TypeError, "complex"),
    # torch tensors without data
    "torch-meta": (lambda: as_operator(torch.empty((5, 5), device="meta")), TypeError, "meta"),
    # sizes checked before allocating
    "n=1e9": (lambda: trace(_huge(10**9), 10, rng=0), MemoryError, "GiB"),
    "n=1e12": (lambda: trace(_huge(10**12), 10, rng=0), ValueError, "memory"),
    "n=1e12-diagonal": (lambda: diagonal(_huge(10**12), 10, rng=0), ValueError, "memory"),
    # constructors
    "kernel_operator(None)": (lambda: kernel_operator(None), TypeError, "None"),
    "shape-strings": (lambda: Operator.from_matvec(lambda v: v, ("a", "b"), dtype=np.float64),
                      TypeError, "shape"),
    "shape-floats": (lambda: Operator.from_matvec(lambda v: v, (3.0, 3.0), dtype=np.float64),
                     TypeError, "shape"),
    "shape-bools": (lambda: Operator.from_matvec(lambda v: v, (True, True), dtype=np.float64),
                    TypeError, "shape"),
    "shape-scalar": (lambda: Operator.from_matvec(lambda v: v, 3, dtype=np.float64),
                     TypeError, "shape"),
    "symmetric='yes'": (lambda: Operator.from_matvec(lambda v: v, (3, 3), dtype=np.float64,
                                                     symmetric="yes"), TypeError, "symmetric"),
    "psd=2.5": (lambda: Operator.from_matvec(lambda v: v, (3, 3), dtype=np.float64, psd=2.5),
                TypeError, "psd"),
    "as_operator(symmetric='yes')": (lambda: as_operator(P, symmetric="yes"), TypeError,
                                     "symmetric"),
    "as_operator(psd=2.5)": (lambda: as_operator(P, psd=2.5), TypeError, "psd"),
    "as_operator(op, psd=1)": (lambda: as_operator(as_operator(P), psd=1), TypeError, "psd"),
    # random generators
    "rng=-1": (lambda: trace(P, 10, rng=-1), ValueError, "rng"),
    "rng=True": (lambda: trace(P, 10, rng=True), TypeError, "rng"),
    "rng='0'": (lambda: trace(P, 10, rng="0"), TypeError, "rng"),
    "rng=RandomState": (lambda: trace(P, 10, rng=np.random.RandomState(0)), TypeError,
                        "default_rng"),
    # the exact (full-budget) path checks its arguments too
    "exact-rng=-1": (lambda: trace(P, 30, rng=-1), ValueError, "rng"),
    "exact-rng=True": (lambda: diagonal(P, 40, rng=True), TypeError, "rng"),
    "exact-probe": (lambda: trace(P, 30, probe="normal"), ValueError, "probe"),
    "exact-probe-type": (lambda: diagonal(P, 30, probe=1), TypeError, "probe"),
    "exact-rtol": (lambda: trace(P, 30, rtol=-1.0), ValueError, "rtol"),
    "exact-block": (lambda: trace(P, 30, block_size=2.5), TypeError, "block_size"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_refused_with_a_clear_error(name):
    call, exc, match = ERRORS[name]
    with pytest.raises(exc, match=match):
        call()


def test_non_finite_error_numbers_the_products():
    op = _returning(lambda v: v * np.nan)
    with pytest.raises(NonFiniteError) as info:
        op.matmat(np.ones((6, 3)))
    assert info.value.products == (1, 3)


def test_hessian_max_probes_is_checked():
    hessian = pytest.importorskip("hessian")
    model = torch.nn.Linear(3, 1).double()
    data = [(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64))]
    with pytest.raises(TypeError, match="max_probes"):
        hessian.HessianOperator(model, torch.nn.functional.mse_loss, data, max_probes=2.5)


# ----------------------------------------------------------------- answers (must be right)
@pytest.mark.parametrize("method", ["xtrace", "hutchinson", "hutchpp", "xnystrace"])
@pytest.mark.parametrize("c", [1e-300, 1e300, 1e-200, 1e200, 1e-30, 1e30])
def test_trace_is_scale_safe(method, c):
    a = trace(as_operator(P, psd=True), 10, method=method, rng=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no flag: c * P is a normal matrix
        b = trace(as_operator(P * c, psd=True), 10, method=method, rng=3)
    assert np.isfinite(b.value) and np.isfinite(b.stderr) and b.stderr > 0
    np.testing.assert_allclose(b.value, c * a.value, rtol=1e-10)
    np.testing.assert_allclose(b.stderr, c * a.stderr, rtol=1e-8)


@pytest.mark.parametrize("method", ["xtrace", "hutchinson", "hutchpp"])
def test_trace_of_subnormal_matrix_is_flagged_not_nan(method):
    with pytest.warns(UserWarning, match="subnormal"):
        b = trace(P * 1e-310, 10, method=method, rng=3)
    assert np.isfinite(b.value) and b.stderr > 0 and np.isfinite(b.stderr)
    assert abs(b.value - 1e-310 * LAM.sum()) <= 5 * b.stderr + 1e-3 * 1e-310 * LAM.sum()


def test_diagonal_is_scale_safe():
    a = diagonal(P, 10, rng=1)
    b = diagonal(P * 1e300, 10, rng=1)
    assert np.all(np.isfinite(b.stderr)) and np.all(b.stderr > 0)
    np.testing.assert_allclose(b.value, 1e300 * a.value, rtol=1e-12)


@pytest.mark.parametrize("method,m", [("xtrace", 3), ("hutchpp", 3), ("hutchinson", 1),
                                      ("xtrace", 2)])
def test_infinite_error_bar_is_never_converged(method, m):
    A = as_operator(matrix_from_eigenvalues(np.arange(1.0, 7.0), rng=1), psd=True)
    with pytest.warns(ConvergenceWarning, match="standard error"):
        est = trace(A, m, method=method, rng=0)
    assert not est.converged
    assert not np.isfinite(est.stderr)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 9), m=st.integers(1, 8), seed=st.integers(0, 2**16),
       method=st.sampled_from(["xtrace", "hutchpp", "hutchinson", "xnystrace"]),
       rtol=st.sampled_from([None, 0.5]))
def test_property_converged_means_finite_error_bar(n, m, seed, method, rtol):
    m = max(m, {"hutchpp": 3, "xtrace": 2, "xnystrace": 2}.get(method, 1))
    A = as_operator(matrix_from_eigenvalues(np.geomspace(1.0, 1e-3, n), rng=seed), psd=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = trace(A, m, method=method, rtol=rtol, rng=seed)
    if est.converged:
        assert np.isfinite(est.stderr)
    else:
        assert "not converged" in est.message


def test_infinite_diagonal_error_bar_is_never_converged():
    with pytest.warns(ConvergenceWarning):
        est = diagonal(P, 1, method="hutchinson", rng=0)
    assert not est.converged


# ----------------------------------------------------------------- interoperability
def test_torch_generator_works_on_numpy_operators():
    a = trace(P, 12, method="hutchinson", rng=torch.Generator().manual_seed(0))
    b = trace(P, 12, method="hutchinson", rng=torch.Generator().manual_seed(0))
    assert a.value == b.value and np.isfinite(a.stderr)
    d = diagonal(P, 12, rng=torch.Generator().manual_seed(1))
    assert d.value.shape == (30,)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_torch_sparse_operators(layout):
    T = torch.from_numpy(P)
    S = T.to_sparse_coo() if layout == "coo" else T.to_sparse_csr()
    op = as_operator(S)
    assert op.symmetric and op.backend == "torch"
    v = torch.arange(30, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), T @ v)
    np.testing.assert_allclose(trace(S, 30).value, LAM.sum(), rtol=1e-12)
    a, b = trace(S, 12, rng=same_probes(4)), trace(P, 12, rng=same_probes(4))
    np.testing.assert_allclose(a.value, b.value, rtol=1e-10)  # the same probes


def test_torch_sparse_with_nan_is_refused():
    S = torch.sparse_coo_tensor([[0, 1], [0, 1]], [1.0, float("nan")], (3, 3),
                                dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN"):
        as_operator(S)


# ----------------------------------------------------------------- property
@settings(max_examples=25, deadline=None)
@given(e=st.floats(-250.0, 250.0), method=st.sampled_from(["xtrace", "hutchinson", "hutchpp"]),
       seed=st.integers(0, 2**16))
def test_property_trace_scale_equivariant(e, method, seed):
    c = 10.0**e
    a = trace(P[:12, :12], 8, method=method, rng=seed)
    b = trace(P[:12, :12] * c, 8, method=method, rng=seed)
    np.testing.assert_allclose(b.value, c * a.value, rtol=1e-10)
    np.testing.assert_allclose(b.stderr, c * a.stderr, rtol=1e-8)
    assert b.converged == a.converged
