"""The log-variable model on a positive law spanning decades, against its known spectrum."""

import warnings

import numpy as np
import pytest

from freedecomp import FreeDecompressionWarning, decompress
from freedecomp.logmodel import fit_log
from freedecomp.samplers import haar_compress
from spectra.testing import wasserstein1


def test_log_model_density_integrates_to_one():
    e = 10 ** np.random.default_rng(0).normal(-2, 1, 500)
    m = fit_log(e, 16)
    x = np.geomspace(e.min() / 2, e.max() * 2, 4000)
    assert np.trapezoid(m.density(x), x) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="positive eigenvalues"):
        fit_log(np.linspace(-1, 1, 50), 8)


@pytest.mark.parametrize("seed", range(2))
def test_log_model_on_a_log_normal_spectrum_over_five_decades(seed):
    # an invariant PSD matrix whose spectrum is log-normal (log10 x ~ N(-2, 0.9)); its
    # blocks are Haar compressions; alpha = 16
    g = np.random.default_rng(seed)
    full = np.sort(10 ** (-2 + 0.9 * g.standard_normal(4096)))
    blocks = [haar_compress(full, 256, g) for _ in range(4)]
    sd = full.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        log = decompress(blocks, 4096, method="log", rng=seed, check=False)
        free = decompress(blocks, 4096, method="free", rng=seed, check=False)
    e_log = wasserstein1(log.density, full) / sd
    assert e_log < 0.6 * wasserstein1(free.density, full) / sd
    assert e_log < 0.3 * wasserstein1(blocks[0], full) / sd
    assert log.diagnostics.model.startswith("log-chebyshev")
    assert log.x.min() > 0 and np.all(np.diff(np.log(log.x)) > 0)  # a geometric grid
