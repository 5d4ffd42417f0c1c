"""SLQ error bars that include the quadrature bias (issue 15).

Gauss-Radau brackets (:mod:`spectra.gauss`) against dense references on matrices with
a prescribed spectrum, exactness at full budget, logdet against ``slogdet``, adaptive
step budgets, and the issue's digits RBF kernel case.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from spectra import ConvergenceWarning, as_operator, lanczos, logdet, trace_function
from spectra.gauss import gauss_rule, quadrature_bracket, radau_rule
from spectra.probes import as_rng, draw
from spectra.testing import matrix_from_eigenvalues


def _probes(A, p, seed):
    """The Rademacher probes the estimators draw for ``rng=seed``."""
    return draw("rademacher", A.shape[0], p, like=as_operator(A), rng=as_rng(seed))


FUNCTIONS = {
    "inverse": (np.reciprocal, np.linspace(0.05, 3.0, 120)),
    "log": (np.log, np.geomspace(1e-3, 10.0, 120)),
    "sqrt": (np.sqrt, np.geomspace(1e-4, 5.0, 120)),
    "exp": (np.exp, np.linspace(-2.0, 2.0, 120)),
    "x^-1.5": (lambda x: x**-1.5, np.geomspace(0.1, 4.0, 120)),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("k", [2, 5, 12])
def test_radau_bracket_contains_every_probes_quadratic_form(name, k):
    f, lam = FUNCTIONS[name]
    A = matrix_from_eigenvalues(lam, rng=3)
    w, U = np.linalg.eigh(A)
    fA = (U * f(w)) @ U.T
    g = np.random.default_rng(k)
    Z = g.standard_normal((lam.size, 6))
    res = lanczos(A, k, v0=Z, reorth="full")
    for i in range(6):
        q = Z[:, i] / np.linalg.norm(Z[:, i])
        truth = q @ fA @ q
        br = quadrature_bracket(res.alpha[i], res.beta[i, : k - 1], res.beta[i, k - 1], f,
                                lam[0], lam[-1])
        assert br.lower <= truth * (1 + 1e-12) + 1e-14
        assert truth <= br.upper * (1 + 1e-12) + 1e-14
        assert br.lower <= br.upper
        if name == "inverse":  # Gauss is a lower bound of 1/x, Radau at b a tighter one
            assert br.gauss <= br.lower * (1 + 1e-12)


def test_radau_rule_has_the_prescribed_node_and_is_exact_to_degree_2k():
    A = matrix_from_eigenvalues(np.linspace(1.0, 2.0, 40), rng=0)
    z = _probes(A, 1, 1)[:, 0]
    z /= np.linalg.norm(z)
    res = lanczos(A, 4, v0=z)
    a, b, bn = res.alpha[0], res.beta[0, :3], res.beta[0, 3]
    for c in (0.9, 2.1):
        nodes, w = radau_rule(a, b, bn, c)
        assert nodes.size == 5 and np.min(np.abs(nodes - c)) < 1e-12
        for d in range(9):  # degree 2k = 8
            np.testing.assert_allclose(w @ nodes**d, z @ np.linalg.matrix_power(A, d) @ z,
                                       rtol=1e-10)
    with pytest.raises(ValueError, match="inside the Ritz interval"):
        radau_rule(a, b, bn, float(np.mean(gauss_rule(a, b)[0])))


def test_bracket_is_infinite_across_a_pole():
    A = matrix_from_eigenvalues(np.linspace(0.1, 2.0, 50), rng=0)
    res = lanczos(A, 5, rng=0)
    br = quadrature_bracket(res.alpha[0], res.beta[0, :4], res.beta[0, 4], np.reciprocal,
                            -0.5, 2.0)
    assert br.lower == -np.inf and br.upper == np.inf and np.isfinite(br.gauss)


@pytest.mark.parametrize("name", ["inverse", "log", "sqrt"])
def test_trace_function_bracket_covers_truth_with_known_bounds(name):
    f, lam = FUNCTIONS[name]
    A = matrix_from_eigenvalues(lam, rng=7)
    truth = f(lam).sum()
    for seed in range(3):
        est = trace_function(A, f, num_steps=6, num_probes=8, bracket=True,
                             spectrum_bounds=(lam[0], lam[-1]), rtol=1.0, rng=seed)
        assert est.bracketed
        # the probe mean of the quadratic forms lies in the probe mean of the brackets
        w, U = np.linalg.eigh(A)
        Z = _probes(A, 8, seed)
        forms = np.einsum("ip,ij,jp->p", Z, (U * f(w)) @ U.T, Z)
        scale = np.abs(forms).max()
        assert est.lower - 1e-12 * scale <= forms.mean() <= est.upper + 1e-12 * scale
        assert abs(est.value - truth) <= 2 * est.stderr


def test_per_probe_brackets_contain_each_probe():
    lam = np.geomspace(1e-2, 10.0, 200)
    A = matrix_from_eigenvalues(lam, rng=2)
    w, U = np.linalg.eigh(A)
    fA = (U / w) @ U.T
    est = trace_function(A, "inverse", num_steps=8, num_probes=5, spectrum_bounds=(1e-2, 10),
                         rtol=1.0, rng=4)
    Z = _probes(A, 5, 4)
    forms = np.einsum("ip,ij,jp->p", Z, fA, Z)
    # the same probes' brackets, from the public pieces
    res = lanczos(A, 8, v0=Z, reorth="none")
    for i in range(5):
        br = quadrature_bracket(res.alpha[i], res.beta[i, :7], res.beta[i, 7], np.reciprocal,
                                1e-2, 10.0)
        z2 = Z[:, i] @ Z[:, i]
        assert z2 * br.lower <= forms[i] * (1 + 1e-10) <= z2 * br.upper * (1 + 1e-10)
        np.testing.assert_allclose(est.samples[i], 0.5 * z2 * (br.lower + br.upper),
                                   rtol=1e-8)


def test_exact_at_full_budget_and_logdet_matches_slogdet():
    lam = np.geomspace(0.01, 50.0, 80)
    A = matrix_from_eigenvalues(lam, rng=1)
    sign, ld = np.linalg.slogdet(A)
    est = logdet(A, num_steps=80)
    assert sign > 0 and est.converged and est.stderr == 0 and est.num_matvecs == 80
    np.testing.assert_allclose(est.value, ld, rtol=1e-12)
    est = trace_function(A, "inverse", num_steps=200)
    np.testing.assert_allclose(est.value, (1 / lam).sum(), rtol=1e-11)


def test_logdet_stochastic_covers_slogdet_and_converges():
    lam = np.geomspace(0.5, 20.0, 6000)
    A = sp.diags(lam)  # a prescribed spectrum at a size where the adaptive run is stochastic
    truth = np.log(lam).sum()
    for seed in range(3):
        est = logdet(A, rtol=0.05, num_probes=20, probe="gaussian", rng=seed)
        assert est.converged and est.num_steps < 6000
        assert abs(est.value - truth) <= 2 * est.stderr
        assert est.bias <= 0.5 * 0.05 * abs(est.value)


def test_adaptive_budget_stops_when_the_bracket_is_tight():
    lam = np.linspace(1.0, 2.0, 5000)  # well conditioned: few steps suffice
    with pytest.warns(ConvergenceWarning, match="more probes"):
        est = trace_function(sp.diags(lam), "inverse", rtol=1e-3, num_probes=4,
                             probe="gaussian", rng=0)
    assert est.num_steps == 16 and est.num_matvecs == 4 * 16
    assert est.bias < 1e-6 * est.value
    hard = np.geomspace(1e-3, 1.0, 5000)
    with pytest.warns(ConvergenceWarning, match="more steps"):
        est = trace_function(sp.diags(hard), "inverse", rtol=1e-3,
                             num_probes=2, max_steps=32, rng=0)
    assert est.num_steps == 32 and not est.converged


def test_generic_f_folds_the_half_step_bias_into_the_error_bar():
    lam = np.geomspace(1e-2, 1.0, 400)
    A = matrix_from_eigenvalues(lam, rng=0)
    truth = (1 / lam).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = trace_function(A, lambda x: 1 / x, num_steps=6, num_probes=10, rng=0)
    assert not est.bracketed and not est.converged
    assert est.value < truth  # Gauss is a lower bound for 1/x ...
    assert abs(est.value - truth) <= 2 * est.stderr  # ... and the error bar says so
    assert est.bias > 5 * est.probe_stderr


def _digits_kernel():
    sklearn = pytest.importorskip("sklearn.datasets")
    from scipy.spatial.distance import pdist, squareform

    X = sklearn.load_digits().data
    D = squareform(pdist(X))
    h = np.median(D[np.triu_indices_from(D, 1)])
    return np.exp(-((D / h) ** 2)) + 1e-2 * np.eye(X.shape[0])


@pytest.mark.slow
def test_issue15_digits_rbf_inverse_trace_error_bar_covers_or_not_converged():
    A = _digits_kernel()
    truth = np.sum(1.0 / np.linalg.eigvalsh(A))
    for seed in range(3):
        for kw in ({}, {"bracket": True}, {"spectrum_bounds": (1e-2, None)}):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = trace_function(A, lambda x: 1 / x, num_steps=30, rng=seed, **kw)
            covered = abs(est.value - truth) <= 2 * est.stderr
            assert covered or not est.converged
            assert covered  # here the bias-inclusive bar does cover the -15% Gauss error
            assert not est.converged
            assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    est = trace_function(A, "inverse", rng=0)  # adaptive default: converged and right
    assert est.converged and abs(est.value - truth) <= max(2 * est.stderr, 1e-9 * truth)


def test_estimated_spectral_ends_bound_the_spectrum():
    lam = np.r_[np.geomspace(0.5, 3.0, 397), 0.2, 6.0, 9.0]  # isolated ends
    A = matrix_from_eigenvalues(lam, rng=5)
    for seed in range(5):
        est = trace_function(A, np.exp, num_steps=20, num_probes=6, probe="gaussian",
                             rtol=1.0, rng=seed)
        a, b = est.spectrum_bounds
        assert a <= lam.min() and b >= lam.max()
        assert est.bracketed  # 20 steps are enough for the random-start margin
        # log: the estimated lower end lies below 0, so no bracket: an estimate only
        est = trace_function(A, np.log, num_steps=20, num_probes=6, probe="gaussian",
                             rtol=1.0, rng=seed)
        assert est.spectrum_bounds[0] < 0 and not est.bracketed
    from spectra.gauss import random_start_margin

    assert random_start_margin(400, 3, 6) >= 0.5  # too short: no probabilistic bound
    assert random_start_margin(400, 200, 6) < random_start_margin(400, 20, 6) < 0.5
