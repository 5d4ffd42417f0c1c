"""Blocks that are operators: block spectra from SLQ and densities, operator samplers."""

import warnings

import numpy as np
import pytest

import spectra
from freedecomp import FreeDecompressionWarning, decompress
from freedecomp.blocks import (
    BlockSample,
    BlockSpectrum,
    block_spectrum,
    embed,
    from_density,
    quantile_points,
)
from freedecomp.samplers import kernel_blocks
from spectra.distances import wasserstein1
from spectra.testing import matrix_from_eigenvalues


def _spiked(n: int, spikes=(40.0, 25.0, 12.0), seed: int = 0) -> np.ndarray:
    """A smooth bulk on [0.1, 2] plus isolated spikes: PSD with outliers."""
    bulk = 0.1 + 1.9 * np.random.default_rng(seed).beta(2, 3, n - len(spikes))
    return np.sort(np.concatenate([bulk, spikes]))


def _mixture(N: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    centres = 3.0 * g.standard_normal((4, 3))
    return centres[g.integers(0, 4, N)] + g.standard_normal((N, 3))


# ------------------------------------------------------------------ quantile points
def test_quantile_points_keep_the_mean_and_the_range():
    g = np.random.default_rng(1)
    x, w = g.uniform(0.5, 3.0, 40), g.uniform(0.1, 1.0, 40)
    q = quantile_points(x, w, 1000)
    assert q.size == 1000 and np.all(np.diff(q) >= 0)
    assert q.mean() == pytest.approx(np.sum(w * x) / w.sum(), rel=1e-12)
    assert x.min() - 1e-12 <= q.min() and q.max() <= x.max() + 1e-12
    # the points stand for the measure: W1 below the largest gap between nodes
    assert wasserstein1(q, x, None, w / w.sum()) < np.diff(np.sort(x)).max()


def test_quantile_points_respect_a_lower_bound():
    q = quantile_points([0.0, 1e-3, 1.0, 2.0], [0.5, 0.2, 0.2, 0.1], 200, lower=0.0)
    assert q.min() >= 0.0
    assert q.mean() == pytest.approx(0.2 * 1e-3 + 0.2 + 0.2, rel=1e-12)


def test_quantile_points_of_many_equal_atoms_are_the_atoms():
    x = np.arange(1.0, 51.0)
    q = quantile_points(x, np.ones(50), 50)
    np.testing.assert_allclose(q, x, atol=1e-12)  # one bin per node: its cell's mean


# ------------------------------------------------------------------ block spectra
def test_dense_block_is_exact():
    lam = _spiked(200)
    bs = block_spectrum(matrix_from_eigenvalues(lam, rng=0), dense_max=500)
    assert bs.method == "dense" and bs.error == 0.0
    np.testing.assert_allclose(bs.eigs, lam, atol=1e-10)


def test_full_budget_slq_is_exact():
    lam = _spiked(120)
    bs = block_spectrum(matrix_from_eigenvalues(lam, rng=0), dense_max=0, num_steps=120)
    assert bs.method == "dense"
    np.testing.assert_allclose(bs.eigs, lam, atol=1e-10)


def test_slq_block_keeps_outliers_exact_and_its_error_covers_the_truth():
    lam = _spiked(600)
    A = matrix_from_eigenvalues(lam, rng=0)
    bs = block_spectrum(A, dense_max=0, num_probes=8, num_steps=50, rng=3)
    assert bs.method == "slq" and bs.n == 600
    np.testing.assert_allclose(bs.outliers[-3:], lam[-3:], rtol=1e-9)
    np.testing.assert_allclose(bs.eigs[-3:], lam[-3:], rtol=1e-9)
    err = wasserstein1(bs.eigs, lam)
    assert err <= bs.error  # the reported W1 error includes the truth
    assert err < 0.01 * lam.std()
    assert bs.eigs.min() >= 0.0
    assert abs(bs.eigs.sum() - lam.sum()) < 0.02 * lam.sum()  # the SLQ trace


def test_a_rank_bound_makes_the_null_space_exact_zeros():
    g = np.random.default_rng(2)
    lam = np.concatenate([np.zeros(300), np.geomspace(1e-6, 5.0, 100)])
    A = matrix_from_eigenvalues(lam, rng=0)
    loose = block_spectrum(A, psd=True, dense_max=0, num_probes=6, num_steps=40, rng=g)
    assert np.count_nonzero(loose.eigs == 0.0) < 300  # SLQ alone smears the null space
    bs = block_spectrum(A, psd=True, dense_max=0, num_probes=6, num_steps=40, rank=100,
                        rng=np.random.default_rng(2))
    assert np.count_nonzero(bs.eigs == 0.0) >= 300
    assert abs(bs.eigs.sum() - loose.eigs.sum()) < 1e-3 * lam.sum()
    dense = block_spectrum(A, psd=True, rank=100)
    np.testing.assert_array_equal(dense.eigs[:300], 0.0)
    np.testing.assert_allclose(dense.eigs[300:], lam[300:], rtol=1e-6, atol=1e-12)


def test_slq_block_error_shrinks_with_steps():
    lam = _spiked(600)
    A = matrix_from_eigenvalues(lam, rng=0)
    coarse = block_spectrum(A, dense_max=0, num_probes=6, num_steps=8, rng=0)
    fine = block_spectrum(A, dense_max=0, num_probes=6, num_steps=60, rng=0)
    assert fine.quadrature_error < coarse.quadrature_error
    assert wasserstein1(fine.eigs, lam) < wasserstein1(coarse.eigs, lam)


def test_from_density_matches_the_block_estimate_and_infers_n():
    lam = _spiked(500)
    A = matrix_from_eigenvalues(lam, rng=0)
    den = spectra.density(A, num_probes=6, num_steps=40, rng=5)
    bs = from_density(den)
    ref = block_spectrum(A, dense_max=0, num_probes=6, num_steps=40, rng=5)
    assert bs.n == 500 and bs.outliers.size == ref.outliers.size > 0
    np.testing.assert_allclose(bs.eigs, ref.eigs, rtol=1e-9, atol=1e-12)
    exact = from_density(spectra.density(A[:100, :100], num_steps=100))
    np.testing.assert_allclose(exact.eigs, np.linalg.eigvalsh(A[:100, :100]), atol=1e-10)


def test_from_density_without_deflation_needs_n():
    lam = np.linspace(1.0, 2.0, 300)
    den = spectra.density(matrix_from_eigenvalues(lam, rng=0), num_probes=4, num_steps=20,
                          deflate=False, rng=0)
    with pytest.raises(TypeError, match="pass n="):
        from_density(den)
    assert from_density(den, n=300).n == 300


def test_density_with_too_few_nodes_says_how_many():
    den = spectra.density(matrix_from_eigenvalues(np.linspace(1, 2, 300), rng=0),
                          num_probes=2, num_steps=4, deflate=False, rng=0)
    with pytest.raises(ValueError, match="at least 16"):
        decompress(den, 1200, n=300)


# ------------------------------------------------------------------ decompress hook
def test_operator_sampler_on_the_dense_route_equals_the_dense_sampler():
    X = _mixture(1200)
    kb = kernel_blocks(X)
    K = kb.operator.block(np.arange(1200), np.arange(1200))
    a = decompress(kb, 1200, n=200, total=1200, rng=4, num_samples=2)
    b = decompress(lambda i: K[np.ix_(i, i)], 1200, n=200, total=1200, rng=4, num_samples=2)
    np.testing.assert_allclose(a.rho, b.rho, rtol=1e-8, atol=1e-10)
    assert a.diagnostics.block_estimates[0]["method"] == "dense"
    assert b.diagnostics.block_estimates is None


def test_slq_fed_blocks_decompress_like_dense_ones():
    lam = _spiked(1600)
    A = matrix_from_eigenvalues(lam, rng=0)

    def ops(i):
        return spectra.as_operator(A[np.ix_(i, i)], symmetric=True)

    dense = decompress(lambda i: A[np.ix_(i, i)], 1600, n=400, total=1600, rng=2,
                       num_samples=2)
    slq = decompress(ops, 1600, n=400, total=1600, rng=2, num_samples=2,
                     blocks={"dense_max": 0, "num_probes": 8, "num_steps": 60})
    rows = slq.diagnostics.block_estimates
    assert [r["method"] for r in rows] == ["slq", "slq"]
    assert all(r["outliers"] >= 1 for r in rows)
    d1, d2 = dense.density, slq.density
    assert wasserstein1(d1.nodes, d2.nodes, d1.weights, d2.weights) < 0.05 * lam.std()


def test_a_spectral_density_list_is_a_sample():
    lam = _spiked(1600)
    A = matrix_from_eigenvalues(lam, rng=0)
    g = np.random.default_rng(0)
    dens = []
    for s in range(2):
        i = np.sort(g.choice(1600, 400, replace=False))
        dens.append(spectra.density(A[np.ix_(i, i)], num_probes=8, num_steps=60, rng=s))
    res = decompress(dens, 1600, rng=0)
    assert res.size == 1600 and len(res.diagnostics.block_estimates) == 2
    assert res.diagnostics.block_estimates[0]["method"] == "density"


def test_loose_slq_blocks_warn():
    lam = np.sort(np.random.default_rng(0).uniform(0.0, 1.0, 800))
    A = matrix_from_eigenvalues(lam, rng=0)
    with pytest.warns(FreeDecompressionWarning, match="W1 error"):
        res = decompress(lambda i: spectra.as_operator(A[np.ix_(i, i)], symmetric=True),
                         800, n=400, total=800, rng=0, num_samples=1,
                         blocks={"dense_max": 0, "num_probes": 2, "num_steps": 16})
    assert any("W1 error" in w for w in res.diagnostics.warnings)


# ------------------------------------------------------------------ bad input
def _op(B, **kw):
    return spectra.as_operator(B, **kw)


def test_wrong_size_operator_is_refused():
    A = matrix_from_eigenvalues(np.linspace(1, 2, 300), rng=0)
    with pytest.raises(ValueError, match="shape"):
        decompress(lambda i: _op(A[:50, :50]), 600, n=100, total=300)


def test_non_symmetric_operator_block_is_refused():
    B = np.random.default_rng(0).standard_normal((300, 300))
    with pytest.raises(ValueError, match="symmetric"):
        decompress(lambda i: _op(B[np.ix_(i, i)]), 600, n=100, total=300)


def test_indefinite_block_declared_psd_is_refused():
    A = matrix_from_eigenvalues(np.linspace(-1, 2, 300), rng=0)
    for dense_max in (0, 1000):
        with pytest.raises(ValueError, match="positive semi-definite"):
            decompress(lambda i: _op(A[np.ix_(i, i)], symmetric=True), 600, n=100,
                       total=300, blocks={"psd": True, "dense_max": dense_max,
                                          "num_steps": 30})


def test_sample_size_at_or_above_the_matrix_size_is_refused():
    kb = kernel_blocks(_mixture(200))
    with pytest.raises(ValueError, match="it must exceed n = 200"):
        decompress(kb, 400, n=200, total=200)


def test_unknown_block_option_is_refused():
    kb = kernel_blocks(_mixture(200))
    with pytest.raises(TypeError, match="unknown block options"):
        decompress(kb, 400, n=100, total=200, blocks={"probes": 3})


# ------------------------------------------------------------------ pieces
def test_kernel_blocks_are_principal_blocks_of_one_kernel():
    X = _mixture(300)
    kb = kernel_blocks(X, "rbf")
    i = np.array([3, 10, 50, 299])
    np.testing.assert_allclose(kb(i).block(np.arange(4), np.arange(4)),
                               kb.operator.block(i, i), rtol=1e-12)
    assert kb.psd and kb.total == 300
    with pytest.raises(ValueError, match="distinct"):
        kb(np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="distinct"):
        kb(np.array([0, 300]))


def test_coarse_subsample_has_the_compressed_mean():
    e = _spiked(4000)
    smp = BlockSample(4000, [e], spectra=[BlockSpectrum(e)])
    sub = smp.subsample(2000, np.random.default_rng(0))
    assert sub.size == 2000
    assert sub.mean() == pytest.approx(e.mean(), rel=0.05)


def test_embed_maps_mass_and_trace():
    lam = _spiked(1600)
    A = matrix_from_eigenvalues(lam, rng=0)
    res = decompress(A[:400, :400], 1600, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = embed(res, scale=0.5, size=4000)
    zero = dict(big.atoms).get(0.0)
    assert zero == pytest.approx(1 - 1600 / 4000)
    assert big.trace() == pytest.approx(0.5 * res.trace(), rel=1e-6)
    with pytest.raises(ValueError, match="rank"):
        embed(res, scale=1.0, size=4000, rank=2000)


def test_node_minimum_is_the_drivers():
    from freedecomp import blocks, driver

    assert blocks.MIN_NODES == driver.MIN_EIGENVALUES


def test_kpm_density_is_a_block_with_unknown_error():
    A = matrix_from_eigenvalues(np.linspace(1, 2, 300), rng=0)
    bs = from_density(spectra.density(A, method="kpm", num_probes=4, num_steps=20, rng=0),
                      n=300)
    assert bs.n == 300 and np.isnan(bs.quadrature_error) and np.isnan(bs.relative_error)
    assert abs(bs.eigs.mean() - 1.5) < 0.05
