"""Gram matrices sampled by data points (population on the column side, sampled="rows") and
covariances sampled by features (a compressed population, sampled="features")."""

import warnings

import numpy as np
import pytest

from freedecomp import FreeDecompressionWarning, decompress
from freedecomp.gram import ColumnGram
from spectra.testing import wasserstein1


def _activation_gram(N, m, rng):
    """G = X X^T / m, rows i.i.d. N(0, Sigma), Sigma with eigenvalues 1 and 5 (m x m)."""
    sig = np.where(np.arange(m) < m // 2, 1.0, 5.0)
    X = rng.standard_normal((N, m)) * np.sqrt(sig)
    return X @ X.T / m


def test_column_gram_law_matches_a_sample():
    rng = np.random.default_rng(0)
    N, m = 1600, 200
    e = np.linalg.eigvalsh(_activation_gram(N, m, rng))
    law = ColumnGram([1.0, 5.0], [0.5, 0.5], m, N)
    assert law.atoms == [(0.0, pytest.approx(1 - m / N))]
    assert wasserstein1(e, law.to_density()) < 0.02 * e.std()


@pytest.mark.parametrize("seed", range(2))
def test_rows_sampled_gram_against_its_exact_law(seed):
    rng = np.random.default_rng(seed)
    N, m, n = 1600, 200, 400
    G = _activation_gram(N, m, rng)
    idx = np.sort(rng.choice(N, n, replace=False))
    B = G[np.ix_(idx, idx)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(B, N, columns=m, sampled="rows", rng=seed)
        wrong = decompress(B, N, columns=m, rng=seed)  # population on the wrong side
    truth = ColumnGram([1.0, 5.0], [0.5, 0.5], m, N).to_density()
    assert r.diagnostics.sampled == "rows"
    zero = [w for a, w in r.atoms if a == 0.0]
    assert zero and zero[0] == pytest.approx(1 - m / N, abs=1e-9)  # rank m
    err = wasserstein1(r.density, truth)
    assert err < 0.05 * np.sqrt(truth.moment(2) - truth.moment(1) ** 2)
    assert err < 0.5 * wasserstein1(wrong.density, truth)


def test_sampled_is_checked():
    with pytest.raises(ValueError, match="sampled must be one of"):
        decompress(np.linspace(0.1, 1, 50), 100, columns=10, sampled="diagonal")


def _feature_covariance(N, k, m, rng):
    """C = Y (W W^T/m) Y^T / k: m samples of N features with population Y Y^T / k."""
    Y = rng.standard_normal((N, k))
    D = Y @ rng.standard_normal((k, m)) / np.sqrt(k)
    return D @ D.T / m


def test_population_decompression_of_a_wishart_population():
    # principal blocks of a Wishart population of ratio 1/2 are Wishart of ratio n/(2N):
    # decompressing the law of the block's population by N/n gives back ratio 1/2
    from freedecomp import laws
    from freedecomp.gram import decompress_population

    d = laws.MarchenkoPastur(0.125).to_density(num=801)
    t, w = decompress_population(d.nodes[d.weights > 0], d.weights[d.weights > 0], 4.0)
    truth = laws.MarchenkoPastur(0.5).to_density()
    assert wasserstein1(t, truth, w) < 0.02 * np.sqrt(0.5)  # measured 0.0094


def test_feature_sampled_covariance_against_its_exact_law():
    # population Sigma = Y Y^T/k (MP of ratio N/k = 1/2), m = 2N samples: the full law is
    # the deformed MP of ratio N/m = 1/2 over the MP(1/2) population; a block of n
    # features has the compressed population MP(n/k), which sampled="features" undoes
    from freedecomp import laws
    from freedecomp.laws import DeformedMarchenkoPastur

    seed = 0
    rng = np.random.default_rng(seed)
    N, k, m, n = 1200, 2400, 2400, 300
    C = _feature_covariance(N, k, m, rng)
    idx = np.sort(rng.choice(N, n, replace=False))
    B = C[np.ix_(idx, idx)]
    pop = laws.MarchenkoPastur(0.5).to_density(num=801)
    keep = pop.weights > 0
    truth = DeformedMarchenkoPastur(pop.nodes[keep], pop.weights[keep], N / m).to_density(1001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(B, N, columns=m, sampled="features", rng=seed)
        same = decompress(B, N, columns=m, rng=seed)  # population taken as the block's
    sd = np.sqrt(truth.moment(2) - truth.moment(1) ** 2)
    err = wasserstein1(r.density, truth)
    assert r.diagnostics.sampled == "features"
    assert err < 0.03 * sd  # measured 0.011 sd; the block's own population: 0.17 sd
    assert err < 0.5 * wasserstein1(same.density, truth)
    assert wasserstein1(np.linalg.eigvalsh(C), truth) < 0.03 * sd  # the reference
