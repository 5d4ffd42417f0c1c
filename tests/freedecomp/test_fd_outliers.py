"""Outliers kept apart from the bulk and mapped along the real characteristic."""

import warnings

import numpy as np
import pytest

from freedecomp import FreeDecompressionWarning, decompress, laws
from freedecomp.outliers import map_outliers, split_spectrum


def _spiked(N, theta, rng):
    W = laws.Wigner(2.0).sample_matrix(N, rng)
    v = rng.standard_normal(N)
    v /= np.linalg.norm(v)
    return W + theta * np.outer(v, v)


def test_real_axis_map_matches_the_spike_equation():
    # semicircle of sigma_b = 1/2 (radius 1) with an outlier at l = 2.6: m_b(2.6) = -0.4
    # and the map by alpha = 4 gives exactly theta + 1/theta = 10.1 for theta = 10
    bulk = laws.Wigner(1.0).quantiles(200000)
    assert map_outliers(np.array([2.6]), bulk, 4.0)[0] == pytest.approx(10.1, abs=2e-3)
    far = map_outliers(np.array([1e4]), bulk, 4.0)[0]
    assert far == pytest.approx(4e4, rel=1e-6)  # the Nystrom limit far from the bulk


@pytest.mark.parametrize("seed", range(4))
def test_spike_location_within_the_finite_n_spread(seed):
    rng = np.random.default_rng(seed)
    N, n = 2000, 400
    A = _spiked(N, 10.0, rng)
    truth = np.linalg.eigvalsh(A)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(lambda idx: A[np.ix_(idx, idx)], N, n=n, total=N, rng=seed,
                       num_samples=4)
    assert len(r.outliers) == 1 and r.outliers[0].side == "upper"
    o = r.outliers[0]
    assert 0 < o.error < 1.5
    assert abs(o.location - truth) < 3 * o.error + 0.05, (o, truth)
    # the bulk stays a semicircle of radius 2 and the top of the result is the outlier
    assert r.extreme_eigenvalues[1] == pytest.approx(o.location)
    assert r.edges[-1][1] == pytest.approx(2.0, abs=0.15)
    assert r.diagnostics.outlier_count == 1
    assert abs(r.trace() - np.trace(A)) < 0.01 * np.abs(np.linalg.eigvalsh(A)).sum()


@pytest.mark.parametrize("law", [laws.Wigner(1.0), laws.MarchenkoPastur(0.1),
                                 laws.MarchenkoPastur(0.5), laws.Wachter(4.0, 6.0)], ids=repr)
def test_no_outliers_in_invariant_ensembles(law):
    rng = np.random.default_rng(1)
    for n in (128, 512):
        for _ in range(5):
            e = np.linalg.eigvalsh(law.sample_matrix(n, rng))
            s = split_spectrum(e, psd=False)
            assert s.high.size == 0 and s.low.size == 0 and s.zeros == 0


def test_outliers_counted_on_both_sides():
    rng = np.random.default_rng(3)
    e = np.concatenate([laws.Wigner(2.0).quantiles(500), [6.0, 7.5], [-5.0]])
    s = split_spectrum(rng.permutation(e), psd=False)
    assert list(s.high) == [6.0, 7.5] and list(s.low) == [-5.0]
    assert s.bulk.size == 500


def test_localised_outlier_keeps_its_location_and_mass_fraction():
    # a large diagonal entry is a row of the matrix, not a spike of the whole matrix: a
    # block holding that row shows it at the same place, and it stands for N/n rows
    rng = np.random.default_rng(7)
    N, n = 1600, 400
    A = laws.Wigner(2.0).sample_matrix(N, rng)
    A[0, 0] += 30.0
    idx = np.concatenate([[0], np.sort(rng.choice(np.arange(1, N), n - 1, replace=False))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(A[np.ix_(idx, idx)], N, rng=0)
    (o,) = r.outliers
    assert o.localised and o.count == pytest.approx(N / n)
    assert o.location == pytest.approx(30.0, abs=0.5)  # not moved to ~alpha x 30
    assert sum(w for a, w in r.atoms if a > 10) == pytest.approx(1 / n)
