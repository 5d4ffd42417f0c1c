"""The hybrid candidate (outliers mapped, the rest decompressed in log x), the exact mean
invariant and the block-against-Nystrom rule, against known spectra."""

import warnings

import numpy as np
import pytest

from freedecomp import FreeDecompressionWarning, decompress, laws
from freedecomp.result import Score
from freedecomp.samplers import haar_compress
from freedecomp.selection import select
from spectra.testing import wasserstein1


def _kernel_like(N, rng):
    """12 geometric outliers (400 down to 1.5) over a log-normal bulk spanning decades."""
    bulk = 10 ** (-2 + 0.8 * rng.standard_normal(N - 12))
    return np.sort(np.concatenate([400 * 0.6 ** np.arange(12), bulk]))


@pytest.mark.parametrize("seed", [1, 2])
def test_hybrid_on_an_invariant_kernel_like_spectrum(seed):
    # the blocks are Haar compressions of the full spectrum (exact free compressions),
    # so the truth at N is the full spectrum itself
    g = np.random.default_rng(seed)
    N, n = 4096, 512
    full = _kernel_like(N, g)
    b = haar_compress(full, n, g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        hyb = decompress(b, N, method="hybrid", rng=seed)
        pad = decompress(b, N, method="nystrom-pad", rng=seed)
        auto = decompress(b, N, rng=seed)
    sd = full.std()
    err = wasserstein1(hyb.density, full) / sd
    assert hyb.diagnostics.model.startswith("hybrid")
    assert err < 0.7 * wasserstein1(pad.density, full) / sd  # measured 0.51-0.55
    assert hyb.extreme_eigenvalues[1] == pytest.approx(full[-1], rel=0.05)
    # the mean is the flow's invariant: N/n x tr(block) exactly (up to the grid)
    assert hyb.trace() == pytest.approx(N * b.mean(), rel=1e-4)
    assert auto.diagnostics.family in ("hybrid", "nystrom-pad")
    assert wasserstein1(auto.density, full) / sd <= 1.05 * wasserstein1(pad.density, full) / sd


def test_hybrid_refuses_what_it_cannot_carry():
    from freedecomp.candidates import estimate

    with pytest.raises(ValueError, match="positive semi-definite"):
        estimate("hybrid", (4,), [np.linspace(-1.0, 1.0, 200)], 4.0, psd=False)
    law = laws.MarchenkoPastur(2.0)  # rank-deficient: exact zeros, not zero rows
    e = np.linalg.eigvalsh(law.sample_matrix(400, 0))
    with pytest.raises(ValueError, match="rank-deficient"):
        estimate("hybrid", (4,), [e], 4.0, psd=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(e, 1600, rng=0)  # and auto does not offer it
    assert not any(k.startswith("hybrid") for k in r.diagnostics.validation)


def test_mean_is_kept_exactly_on_the_free_path():
    law = laws.MarchenkoPastur(0.1)
    A = law.sample_matrix(400, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(A, 3200, rng=3)
    assert r.diagnostics.family not in ("block", "nystrom-pad")
    assert r.trace() == pytest.approx(8 * np.trace(A), rel=1e-4)


def test_block_must_also_win_on_w1_against_nystrom_pad():
    scores = {"block": Score("block", (), 0.20, False, 0, w1=0.08),
              "nystrom-pad": Score("nystrom-pad", (), 0.21, False, 0, w1=0.05)}
    assert select(scores, 0.15)[0] == "nystrom-pad"
    scores["block"] = Score("block", (), 0.20, False, 0, w1=0.04)
    assert select(scores, 0.15)[0] == "block"
    assert select(scores, 0.15, block_ok=False)[0] == "nystrom-pad"  # a dense block
