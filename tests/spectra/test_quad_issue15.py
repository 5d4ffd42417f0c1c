"""Issue 15 cases of the SLQ / KPM estimators: bad inputs, scale, singular matrices.

Every row of the tables failed on main before the change (wrong exception type, a
message that did not name the argument, an accepted bad value, or a silent wrong
answer); the report of the change counts them against main.
"""

import warnings

import numpy as np
import pytest

from spectra import ConvergenceWarning, density, logdet, trace_function
from spectra.densities import smooth
from spectra.testing import matrix_from_eigenvalues

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

P = matrix_from_eigenvalues(np.linspace(1.0, 3.0, 50), rng=0)
FAST = {"num_probes": 2, "num_steps": 8, "rng": 0}


def _density(**kw):
    return lambda: density(P, **{**FAST, **kw})


def _kpm(**kw):
    return lambda: density(P, method="kpm", **{**FAST, **kw})


def _trace(**kw):
    return lambda: trace_function(P, np.sqrt, **{"rng": 0, **kw})


def _logdet(**kw):
    return lambda: logdet(P, **{"rng": 0, **kw})


# (id, call, exception, the words the message must contain)
BAD = [
    ("density-grid=0", _density(grid=0), ValueError, "grid (a point count)"),
    ("density-grid=-1", _density(grid=-1), ValueError, "integer >= 2"),
    ("density-grid=ones33", _density(grid=np.ones((3, 3))), ValueError, "shape (3, 3)"),
    ("density-grid=x", _density(grid="x"), TypeError, "grid must be"),
    ("density-grid=2.5", _density(grid=2.5), TypeError, "point count"),
    ("density-grid=True", _density(grid=True), TypeError, "grid must be"),
    ("density-grid=decreasing", _density(grid=[3.0, 2.0, 1.0]), ValueError,
     "strictly increasing"),
    ("kpm-grid=0", _kpm(grid=0), ValueError, "grid (a point count)"),
    ("kpm-grid=x", _kpm(grid="x"), TypeError, "grid must be"),
    ("kpm-grid=ones33", _kpm(grid=np.ones((3, 3))), ValueError, "shape (3, 3)"),
    ("density-smoothing=True", _density(smoothing=True), TypeError, "smoothing"),
    ("density-smoothing=-1", _density(smoothing=-1.0), ValueError, "> 0"),
    ("density-smoothing=wide", _density(smoothing="wide"), ValueError, "'auto'"),
    ("density-deflate=yes", _density(deflate="yes"), TypeError, "True or False"),
    ("kpm-deflate=1", _kpm(deflate=1), TypeError, "True or False"),
    ("density-num_steps=-1", _density(num_steps=-1), ValueError, "num_steps"),
    ("kpm-num_steps=-1", _kpm(num_steps=-1), ValueError, "num_steps"),
    ("kpm-num_probes=0", _kpm(num_probes=0), ValueError, "num_probes"),
    ("density-method", _density(method="lanczos"), ValueError, "'slq', 'kpm'"),
    ("smooth-grid=ones33", lambda: smooth([1.0], [1.0], np.ones((3, 3)), 0.1), ValueError,
     "grid must be"),
    ("smooth-sigma=0", lambda: smooth([1.0], [1.0], np.linspace(0, 2, 5), 0.0), ValueError,
     "sigma must be positive"),
    ("trace-rtol=0", _trace(rtol=0.0), ValueError, "rtol"),
    ("trace-rtol=2", _trace(rtol=2.0), ValueError, "rtol"),
    ("trace-rtol=str", _trace(rtol="1e-2"), TypeError, "rtol"),
    ("trace-max_steps=0", _trace(max_steps=0), ValueError, "max_steps"),
    ("trace-max_steps=2.5", _trace(max_steps=2.5), TypeError, "max_steps"),
    ("trace-both-budgets", _trace(num_steps=5, max_steps=10), ValueError, "not both"),
    ("trace-bracket=yes", _trace(bracket="yes"), TypeError, "bracket"),
    ("trace-bounds=3", _trace(spectrum_bounds=3.0), TypeError, "spectrum_bounds"),
    ("trace-bounds-reversed", _trace(spectrum_bounds=(3.0, 1.0)), ValueError, "lower < upper"),
    ("trace-bounds-inside", _trace(spectrum_bounds=(2.0, None), num_steps=8), ValueError,
     "not a lower bound"),
    ("trace-f=unknown-name", lambda: trace_function(P, "cube"), ValueError, "'inverse'"),
    ("logdet-num_steps=0", _logdet(num_steps=0), ValueError, "num_steps"),
    ("logdet-probe", _logdet(probe="normal"), ValueError, "'rademacher'"),
    ("logdet-reorth", _logdet(reorth="partial"), ValueError, "'none', 'full', 'auto'"),
]


@pytest.mark.parametrize(("call", "exc", "words"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input_is_refused_by_name(call, exc, words):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(exc) as info:
            call()
    assert words in str(info.value)


def test_density_nodes_at_1e_minus_300_are_c_times_those_of_p():
    base = density(P, **FAST)
    tiny = density(P * 1e-300, **FAST)
    np.testing.assert_allclose(np.sort(tiny.nodes) / 1e-300, np.sort(base.nodes), rtol=1e-10)
    assert 1e-300 <= tiny.bounds[0] and tiny.bounds[1] <= 3e-300 * (1 + 1e-10)
    kpm = density(P * 1e-300, method="kpm", **FAST)
    np.testing.assert_allclose(kpm.x / 1e-300, density(P, method="kpm", **FAST).x, rtol=1e-10)


@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e154, 1e200, 1e300])
def test_logdet_and_kpm_at_extreme_scales(c):
    ref = logdet(P, num_steps=10, rtol=1.0, rng=0)
    got = logdet(P * c, num_steps=10, rtol=1.0, rng=0)
    np.testing.assert_allclose(got.value, ref.value + 50 * np.log(c), rtol=1e-10)
    den = density(P * c, method="kpm", **FAST)
    assert np.all(np.isfinite(den.rho)) and np.all(np.isfinite(den.stderr))
    np.testing.assert_allclose(den.rho * c, density(P, method="kpm", **FAST).rho, rtol=1e-8)


@pytest.mark.parametrize("num_steps", [None, 5, 40])
def test_inverse_of_a_singular_matrix_is_an_error_or_flagged(num_steps):
    A = np.ones((20, 20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = trace_function(A, lambda x: 1 / x, num_steps=num_steps, rng=0)
        except ValueError as err:
            assert "singular" in str(err)
            return
    assert not est.converged and "singular" in est.message
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_regular_matrix_is_not_flagged_singular():
    est = trace_function(P, "inverse", num_steps=50)
    assert est.converged and est.sensitivity < 1e-10 * est.value


@settings(max_examples=12, deadline=None)
@given(e=st.floats(min_value=-250.0, max_value=250.0))
def test_density_and_logdet_are_scale_equivariant(e):
    c = 10.0**e
    base = density(P, **FAST)
    got = density(P * c, **FAST)
    np.testing.assert_allclose(np.sort(got.nodes), c * np.sort(base.nodes), rtol=1e-9)
    np.testing.assert_allclose(got.weights[np.argsort(got.nodes)],
                               base.weights[np.argsort(base.nodes)], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got.x, c * base.x, rtol=1e-9)
    np.testing.assert_allclose(got.rho, base.rho / c, rtol=1e-7, atol=1e-9 * base.rho.max() / c)
    ld, ld0 = (logdet(M, num_steps=10, rtol=1.0, rng=1) for M in (P * c, P))
    np.testing.assert_allclose(ld.value, ld0.value + 50 * np.log(c), rtol=1e-10,
                               atol=1e-9 * abs(ld0.value))
    np.testing.assert_allclose(ld.stderr, ld0.stderr, rtol=1e-6)
    tr, tr0 = (trace_function(M, "inverse", num_steps=10, rtol=1.0, rng=1) for M in (P * c, P))
    np.testing.assert_allclose(tr.value * c, tr0.value, rtol=1e-9)


@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_exact_route_at_extreme_scales(c):
    lam = np.linspace(1.0, 3.0, 50)
    den = density(P * c, num_steps=50)
    np.testing.assert_allclose(np.sort(den.nodes), c * lam, rtol=1e-12)
    assert np.all(np.isfinite(den.rho)) and np.all(den.rho >= 0)
    est = logdet(P * c, num_steps=50)
    np.testing.assert_allclose(est.value, np.log(lam).sum() + 50 * np.log(c), rtol=1e-12)
