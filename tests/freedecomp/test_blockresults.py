"""SLQ block errors carried into a result (bands, diagnostics) and the adaptive budget."""

import warnings
from dataclasses import replace

import numpy as np
import pytest

import spectra
from freedecomp import decompress
from freedecomp.blockresults import slq_shift
from freedecomp.blocks import BlockSample, BlockSpectrum, annotate, block_spectrum
from spectra.distances import wasserstein1
from spectra.testing import matrix_from_eigenvalues


def _spiked(n: int, seed: int = 0) -> np.ndarray:
    bulk = 0.1 + 1.9 * np.random.default_rng(seed).beta(2, 3, n - 3)
    return np.sort(np.concatenate([bulk, [40.0, 25.0, 12.0]]))


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _width(res) -> float:
    return float(np.trapezoid(res.bands[1] - res.bands[0], res.x))


def _covers_shifts(res, shift: float) -> bool:
    """The bands hold the density moved by -shift and +shift (the carried W1 error)."""
    x, rho = res.x, res.rho
    lo, hi = res.bands
    tol = 1e-12 * float(rho.max())
    return all(bool(np.all((lo - tol <= r) & (r <= hi + tol)))
               for r in (np.interp(x - t, x, rho) for t in (-shift, shift)))


# ------------------------------------------------------------------ adaptive budget
def test_adaptive_budget_meets_rtol_and_spends_less_when_looser():
    lam = _spiked(900)
    A = matrix_from_eigenvalues(lam, rng=0)
    loose = block_spectrum(A, dense_max=0, rtol=0.05, rng=0)
    tight = block_spectrum(A, dense_max=0, rtol=0.01, rng=0)
    assert loose.method == tight.method == "slq"
    assert loose.relative_error <= 0.05 and tight.relative_error <= 0.01
    assert loose.num_matvecs < tight.num_matvecs
    # the estimated error covers the true W1 of the points
    assert wasserstein1(tight.eigs, lam) <= tight.error
    assert wasserstein1(loose.eigs, lam) <= loose.error


def test_an_unreachable_rtol_warns():
    A = matrix_from_eigenvalues(np.random.default_rng(1).uniform(0, 1, 400), rng=0)
    with pytest.warns(UserWarning, match="did not reach rtol"):
        bs = block_spectrum(A, dense_max=0, num_probes=2, rtol=1e-9, rng=0)
    assert bs.relative_error > 1e-9


def test_rtol_is_validated():
    A = matrix_from_eigenvalues(np.linspace(1, 2, 100), rng=0)
    with pytest.raises(ValueError, match="rtol"):
        block_spectrum(A, dense_max=0, rtol=0.0)


# ------------------------------------------------------------------ bands
def _blocks(lam, steps: int, seed: int = 0):
    A = matrix_from_eigenvalues(lam, rng=0)
    g = np.random.default_rng(seed)
    out = []
    for s in range(2):
        i = np.sort(g.choice(lam.size, lam.size // 4, replace=False))
        out.append(block_spectrum(A[np.ix_(i, i)], dense_max=0, num_probes=6,
                                  num_steps=steps, rng=s))
    return out


def test_bands_widen_when_the_block_estimate_is_noisier():
    lam = _spiked(1600)
    specs = _blocks(lam, 30)
    base = _quiet(decompress, [BlockSpectrum(s.eigs) for s in specs], 1600, rng=0)
    assert base.bands is not None and base.diagnostics.slq_error is None
    out = []
    for f in (1.0, 4.0):
        noisy = [replace(s, quadrature_error=f * s.quadrature_error,
                         probe_error=f * s.probe_error) for s in specs]
        out.append(annotate(base, BlockSample(400, [s.eigs for s in specs], spectra=noisy)))
    tight, loose = out
    d1, d4 = tight.diagnostics.slq_error, loose.diagnostics.slq_error
    assert 0 < d1 and d4 == pytest.approx(4 * d1)
    assert _width(base) <= _width(tight) < _width(loose)
    assert np.all(loose.bands[0] <= tight.bands[0]) and np.all(tight.bands[0] <= base.bands[0])
    assert np.all(loose.bands[1] >= tight.bands[1]) and np.all(tight.bands[1] >= base.bands[1])
    assert _covers_shifts(loose, d4) and _covers_shifts(tight, d1)
    # the same law and density: only the bands and the diagnostics change
    np.testing.assert_array_equal(loose.rho, base.rho)


def test_slq_shift_is_the_relative_block_error_at_the_results_scale():
    e = np.linspace(0.0, 2.0, 400)
    spec = BlockSpectrum(e, method="slq", quadrature_error=0.01, probe_error=0.02)
    # two blocks: the probe part averages down, the quadrature bias does not
    got = slq_shift([spec, spec], size_sd=10.0)
    assert got == pytest.approx((0.01 + 0.02 / np.sqrt(2)) * 10.0 / e.std())


def test_slq_fed_decompression_carries_its_error():
    lam = _spiked(1600)
    A = matrix_from_eigenvalues(lam, rng=0)

    def ops(i):
        return spectra.as_operator(A[np.ix_(i, i)], symmetric=True)

    runs = [_quiet(decompress, ops, 1600, n=400, total=1600, rng=2, num_samples=2,
                   blocks={"dense_max": 0, "num_probes": p, "num_steps": k})
            for p, k in ((3, 12), (8, 60))]
    loose, tight = (r.diagnostics.slq_error for r in runs)
    assert loose > tight > 0
    for r in runs:
        assert _covers_shifts(r, r.diagnostics.slq_error)


def test_embed_scales_the_carried_error():
    from freedecomp.blocks import embed

    lam = _spiked(1600)
    specs = _blocks(lam, 30)
    base = _quiet(decompress, [BlockSpectrum(s.eigs) for s in specs], 1600, rng=0)
    res = annotate(base, BlockSample(400, [s.eigs for s in specs], spectra=specs))
    big = _quiet(embed, res, scale=0.5, size=4000)
    assert big.diagnostics.slq_error == pytest.approx(0.5 * res.diagnostics.slq_error)
    np.testing.assert_allclose(big.bands, res.bands * (1600 / 4000) / 0.5)
