import numpy as np
import pytest
from helpers import same_probes

from spectra import SpectralDensity, density
from spectra.densities import jackson_weights
from spectra.testing import kolmogorov_smirnov, matrix_from_eigenvalues, wasserstein1


@pytest.fixture(scope="module")
def two_bulk():
    g = np.random.default_rng(0)
    lam = np.sort(np.concatenate([g.normal(0, 1, 500), g.normal(6, 0.5, 300)]))
    return matrix_from_eigenvalues(lam, rng=1), lam


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_density_close_to_truth(two_bulk, method):
    A, lam = two_bulk
    den = density(A, method=method, num_probes=10, num_steps=60, rng=0)
    assert isinstance(den, SpectralDensity)
    assert np.all(den.rho >= 0) and np.all(den.weights >= 0)
    np.testing.assert_allclose(den.weights.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.trapezoid(den.rho, den.x), 1.0, rtol=1e-9)
    width = lam[-1] - lam[0]
    assert wasserstein1(den, lam) < 0.01 * width
    assert kolmogorov_smirnov(den, lam) < 0.08
    assert den.bounds[0] <= lam[0] + 0.05 * width and den.bounds[1] >= lam[-1] - 0.05 * width


def test_slq_bounds_within_spectrum_and_display_curve_tracks_nodes(two_bulk):
    A, lam = two_bulk
    den = density(A, num_probes=6, num_steps=40, rng=1)
    assert lam[0] - 1e-9 <= den.bounds[0] and den.bounds[1] <= lam[-1] + 1e-9
    assert den.stderr is not None and den.stderr.shape == den.x.shape
    # the display curve's mean equals the measure's mean (Gaussian smoothing keeps it)
    np.testing.assert_allclose(np.trapezoid(den.x * den.rho, den.x), den.moment(1), rtol=1e-6)


def test_w1_improves_with_more_steps(two_bulk):
    A, lam = two_bulk
    w = [wasserstein1(density(A, num_probes=10, num_steps=k, rng=2), lam) for k in (5, 20, 80)]
    assert w[0] > w[1] > w[2]


def test_jackson_weights_known_values():
    g = jackson_weights(10)
    assert g[0] == pytest.approx(1.0)
    assert np.all(np.diff(g) < 0) and g[-1] > 0


def test_grids_and_bad_arguments(two_bulk):
    A, _ = two_bulk
    den = density(A, num_probes=2, num_steps=10, grid=64, rng=0)
    assert den.x.size == 64
    x = np.linspace(-1, 1, 50)
    den = density(A, num_probes=2, num_steps=10, grid=x, smoothing=0.2, rng=0)
    np.testing.assert_array_equal(den.x, x)
    assert den.smoothing == 0.2
    with pytest.raises(ValueError, match="method"):
        density(A, method="haydock")
    with pytest.raises(ValueError, match="smoothing"):
        density(A, smoothing=-1.0)
    with pytest.raises(ValueError, match="increasing"):
        density(A, grid=np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="symmetric"):
        density(np.triu(np.ones((20, 20))))


def test_cdf_and_quantile_consistent(two_bulk):
    A, lam = two_bulk
    den = density(A, num_probes=4, num_steps=30, rng=0)
    q = np.array([0.1, 0.5, 0.9])
    x = den.quantile(q)
    # the left-continuous inverse: F(x) >= q, and F just below x < q
    assert np.all(den.cdf(x) >= q - 1e-12)
    assert np.all(den.cdf(np.nextafter(x, -np.inf)) < q)


def test_kpm_nan_from_a_product_names_the_step():
    from spectra import Operator

    d = np.linspace(1.0, 2.0, 60)
    calls = {"n": 0}

    def mm(V):
        calls["n"] += 1
        out = d[:, None] * V
        if calls["n"] > 34:  # after the bounds (30 Lanczos products) and a few KPM steps
            out[0, 0] = np.inf
        return out

    op = Operator.from_matvec(lambda v: d * v, (60, 60), dtype=np.float64, symmetric=True,
                              matmat=mm)
    with pytest.raises(ValueError, match="NaN or Inf") as info:
        density(op, method="kpm", num_probes=2, num_steps=10, rng=0)
    assert "KPM step" in str(info.value) or "products" in str(info.value)  # says where


@pytest.fixture(scope="module")
def outliers():
    """A bulk on [0, 1] plus isolated outliers, one of them triple."""
    g = np.random.default_rng(3)
    lam = np.sort(np.concatenate([g.beta(2, 5, 600), [3.0, 3.0, 3.0, 4.0, 5.5, 7.0]]))
    return matrix_from_eigenvalues(lam, rng=4), lam


def test_deflation_reduces_w1_at_equal_products(outliers):
    A, lam = outliers
    plain = [density(A, num_probes=6, num_steps=40, deflate=False, rng=s) for s in range(8)]
    defl = [density(A, num_probes=6, num_steps=40, deflate=True, rng=s) for s in range(8)]
    assert all(d.num_matvecs == p.num_matvecs == 240 for d, p in zip(defl, plain, strict=True))
    w_plain = np.mean([wasserstein1(d, lam) for d in plain])
    w_defl = np.mean([wasserstein1(d, lam) for d in defl])
    assert w_defl < 0.7 * w_plain


def test_deflation_keeps_multiplicity_in_expectation(outliers):
    # Only one vector of the triple eigenvalue 3 can be deflated from a single pilot run;
    # the other two copies stay in the complement, so the mass at 3 stays 3/n on average.
    A, lam = outliers
    n = lam.size
    mass = []
    for s in range(20):
        den = density(A, num_probes=5, num_steps=40, deflate=True, rng=s)
        near = np.abs(den.nodes - 3.0) < 1e-6
        mass.append(den.weights[near].sum())
        # the isolated simple outliers get exactly their weight 1/n
        for out in (5.5, 7.0):
            at = np.abs(den.nodes - out) < 1e-6
            np.testing.assert_allclose(den.weights[at].sum(), 1.0 / n, rtol=1e-6)
    assert abs(np.mean(mass) - 3.0 / n) < 4 * np.std(mass) / np.sqrt(len(mass))
    assert np.mean(mass) > 2.0 / n


def test_deflation_without_converged_pairs_is_ordinary_slq(two_bulk):
    # Three steps converge nothing: the result is exactly the ordinary estimate.
    A, _ = two_bulk
    a = density(A, num_probes=4, num_steps=3, deflate=True, rng=5)
    b = density(A, num_probes=4, num_steps=3, deflate=False, rng=5)
    np.testing.assert_allclose(np.sort(a.nodes), np.sort(b.nodes), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.rho, b.rho, rtol=1e-8, atol=1e-12)


def test_deflation_on_torch_operator_matches_numpy(outliers):
    torch = pytest.importorskip("torch")
    A, lam = outliers
    a = density(torch.from_numpy(A), num_probes=4, num_steps=30, rng=same_probes(0))
    b = density(A, num_probes=4, num_steps=30, rng=same_probes(0))
    assert a.num_matvecs == b.num_matvecs
    assert abs(wasserstein1(a, lam) - wasserstein1(b, lam)) < 0.2 * wasserstein1(b, lam) + 1e-4


def test_deflated_eigenvalues_are_listed_once_with_weight_one_over_n(outliers):
    A, lam = outliers
    n = lam.size
    den = density(A, num_probes=6, num_steps=40, deflate=True, rng=0)
    assert den.deflated.size >= 3  # 4.0, 5.5 and 7.0 at least
    c = den.deflated.size
    # listed once, first, with weight 1/n each (not once per probe)
    np.testing.assert_array_equal(den.nodes[:c], den.deflated)
    np.testing.assert_allclose(den.weights[:c], 1.0 / n, rtol=1e-12)
    for x in (4.0, 5.5, 7.0):
        assert np.sum(np.abs(den.nodes - x) < 1e-8) == 1
    np.testing.assert_allclose(den.weights[c:].sum(), 1.0 - c / n, rtol=1e-12)
    np.testing.assert_allclose(den.weights.sum(), 1.0, rtol=1e-12)
    # the measure is unchanged by listing them once: same CDF as the per-probe union
    plain_cdf = den.cdf(np.array([3.5, 5.0, 6.0, 8.0]))
    np.testing.assert_allclose(plain_cdf[-1], 1.0)
    np.testing.assert_allclose(np.diff(plain_cdf)[1:], [1.0 / n, 1.0 / n], rtol=1e-9)
    assert density(A, num_probes=6, num_steps=40, deflate=False, rng=0).deflated.size == 0


def test_deflated_slq_on_torch_equals_numpy():
    # the deflated probes run on the complement (lanczos(locked=U)) on torch operators
    # as on numpy ones; the weights agree to rounding amplified by the pilot's ghosts
    torch = pytest.importorskip("torch")
    lam = np.r_[50.0, 40.0, np.linspace(0.0, 1.0, 198)]  # two outliers the pilot deflates
    A = matrix_from_eigenvalues(lam, rng=3)
    a = density(A, num_probes=4, num_steps=25, rng=same_probes(5))
    b = density(torch.from_numpy(A), num_probes=4, num_steps=25, rng=same_probes(5))
    assert a.deflated.size >= 2
    np.testing.assert_allclose(b.deflated, a.deflated, rtol=1e-10)
    np.testing.assert_allclose(b.nodes, a.nodes, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.weights, a.weights, rtol=1e-9, atol=1e-10)
