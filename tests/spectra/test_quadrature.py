import numpy as np
import pytest

from spectra import Operator, as_operator, logdet, trace_function
from spectra.probes import as_rng, draw
from spectra.testing import matrix_from_eigenvalues


def test_gauss_rule_exact_for_low_degree_polynomials(spd_matrix):
    A, lam = spd_matrix
    # With Rademacher probes z^T p(A) z is exact for deg p <= 2k - 1, so the per-probe
    # estimates equal the Hutchinson estimates of tr A^3 computed densely.
    est = trace_function(A, lambda x: x**3, num_probes=4, num_steps=2, rng=0)
    Z = draw("rademacher", A.shape[0], 4, like=as_operator(A), rng=as_rng(0))
    A3 = A @ A @ A
    np.testing.assert_allclose(est.samples, np.einsum("ij,ik,kj->j", Z, A3, Z), rtol=1e-10)


def test_convergence_in_expectation_and_stderr_coverage():
    lam = np.linspace(0.5, 4.0, 400)
    A = matrix_from_eigenvalues(lam, rng=1)
    truth = np.log(lam).sum()
    ests = [logdet(A, num_probes=8, num_steps=25, rng=s) for s in range(60)]
    values = np.array([e.value for e in ests])
    errs = np.array([e.stderr for e in ests])
    # Mean over seeds converges to the truth (within 4 standard errors of the mean).
    assert abs(values.mean() - truth) < 4 * values.std(ddof=1) / np.sqrt(values.size)
    covered = np.mean(np.abs(values - truth) <= 2.0 * errs)
    assert covered >= 0.85


def test_logdet_refuses_indefinite():
    A = matrix_from_eigenvalues(np.linspace(-1.0, 3.0, 60), rng=0)
    with pytest.raises(ValueError, match="positive definite"):
        logdet(A, num_probes=2, num_steps=20, rng=0)


def test_function_errors():
    A = matrix_from_eigenvalues(np.linspace(-1.0, 3.0, 60), rng=0)
    with pytest.raises(ValueError, match="not finite"):
        trace_function(A, np.log, num_probes=2, num_steps=20, rng=0)
    with pytest.raises(TypeError, match="callable"):
        trace_function(A, 3.0)
    with pytest.raises(ValueError, match="elementwise"):
        trace_function(A, lambda x: x.sum(), num_probes=2, num_steps=5, rng=0)
    with pytest.raises(ValueError, match=">= 1"):
        trace_function(A, np.exp, num_probes=0)
    with pytest.raises(TypeError, match="integer"):
        trace_function(A, np.exp, num_steps=3.5)


def test_single_probe_has_infinite_stderr_not_nan(spd_matrix):
    A, _ = spd_matrix
    est = trace_function(A, np.exp, num_probes=1, num_steps=10, rng=0)
    assert est.stderr == np.inf and "single probe" in est.message


def test_nan_matvec_raises():
    op = Operator.from_matvec(lambda v: v * np.nan, (50, 50), dtype=np.float64, symmetric=True)
    with pytest.raises(ValueError, match="NaN or Inf"):
        logdet(op, num_probes=2, num_steps=5, rng=0)


def test_sparse_operator_large_without_reorth():
    import scipy.sparse as sp

    n = 20000
    off = -0.5 * np.ones(n - 1)
    A = sp.diags([2.0 * np.ones(n), off, off], [0, 1, -1], format="csr")
    lam = 2.0 - np.cos(np.arange(1, n + 1) * np.pi / (n + 1))  # Toeplitz eigenvalues
    truth = np.log(lam).sum()
    est = logdet(A, num_probes=6, num_steps=30, reorth="none", rng=0)
    assert est.num_matvecs == 180
    assert abs(est.value - truth) < 4 * est.stderr
    assert est.probe_stderr < 5e-3 * abs(truth) and est.bias < 1e-3 * abs(truth)
