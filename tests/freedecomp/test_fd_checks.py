"""Invariant checks: each fires on a constructed breach, and breaches reach `warnings`."""

import warnings

import numpy as np
import pytest

from freedecomp import FreeDecompressionWarning, decompress, laws
from freedecomp.invariants import run_checks
from freedecomp.result import GridEvaluation


def _uniform(lo, hi, atoms=()):
    x = np.linspace(lo, hi, 2001)
    rho = np.ones_like(x)
    return GridEvaluation(x=x, rho=rho / np.trapezoid(rho, x), atoms=list(atoms),
                          mass=1.0).normalised()


EIGS = np.linspace(1.0, 2.0, 200)  # sample: mean 1.5, variance 1/12 (approximately)
ALPHA = 4.0
HALF = np.sqrt(3 * ALPHA * EIGS.var())  # uniform half-width with variance alpha * var


def test_a_correct_decompression_passes_every_check():
    c = run_checks(_uniform(1.5 - HALF, 1.5 + HALF), EIGS, ALPHA, psd=True, zero_fraction=0,
                   raw_mass=1.0)
    assert all(v.passed for v in c.values()), c


@pytest.mark.parametrize(
    ("ev", "raw_mass", "name"),
    [
        (_uniform(1.6 - HALF, 1.6 + HALF), 1.0, "mean"),            # mean off by 6.7%
        (_uniform(1.5 - 2 * HALF, 1.5 + 2 * HALF), 1.0, "variance"),  # variance x 4
        (_uniform(1.5 - HALF, 1.5 + HALF), 1.3, "mass"),            # mass lost
        (_uniform(1.5 - HALF, 1.5 + HALF, [(1.5, 0.7)]), 1.0, "atom"),  # one big atom
    ],
)
def test_each_check_fires_on_its_breach(ev, raw_mass, name):
    c = run_checks(ev, EIGS, ALPHA, psd=True, zero_fraction=0, raw_mass=raw_mass)
    assert not c[name].passed and c[name].figure > c[name].limit
    assert name in c[name].message or c[name].figure > 0


def test_mass_below_zero_fires_for_psd_only():
    ev = _uniform(-0.5, 3.5)
    c = run_checks(ev, EIGS, ALPHA, psd=True, zero_fraction=0, raw_mass=1.0)
    assert not c["negative_mass"].passed and c["negative_mass"].figure == pytest.approx(
        0.125, abs=0.01)
    assert "negative_mass" not in run_checks(ev, EIGS - 1.5, ALPHA, psd=False,
                                             zero_fraction=0, raw_mass=1.0)


def test_breaches_are_emitted_and_set_diagnostics():
    # a Nystrom-pad answer breaks the free-cumulant variance rule: it must say so
    A = laws.MarchenkoPastur(1 / 8).sample_matrix(200, 0)
    with pytest.warns(FreeDecompressionWarning, match="check 'variance' failed") as rec:
        r = decompress(A, 800, method="nystrom-pad", rng=0)
    assert not r.diagnostics.checks["variance"].passed
    assert any("baseline" in str(w.message) for w in rec)


def test_not_decompressible_always_warns():
    rng = np.random.default_rng(0)
    eig = np.concatenate([rng.uniform(-2, -1, 800), rng.uniform(1, 2, 800)])
    from spectra.testing import matrix_from_eigenvalues

    A = matrix_from_eigenvalues(eig, rng=1)[:200, :200]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = decompress(A, 12800, rng=0)
    msgs = [str(w.message) for w in rec if w.category is FreeDecompressionWarning]
    if not r.diagnostics.decompressible:
        assert any("decompressible=False" in m for m in msgs)
    assert len(msgs) == len(set(msgs)) and len(msgs) >= len(r.diagnostics.warnings)


def test_clean_textbook_case_raises_no_warning():
    law = laws.MarchenkoPastur(1 / 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FreeDecompressionWarning)
        r = decompress(law.sample_matrix(256, 3), 2048, rng=3)
    assert r.diagnostics.decompressible and all(c.passed for c in
                                                r.diagnostics.checks.values())
