"""Gram matrices sampled by data points: population on the column side (sampled="rows")."""

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
        decompress(np.linspace(0.1, 1, 50), 100, columns=10, sampled="features")
