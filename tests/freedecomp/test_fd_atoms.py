"""Atoms and rank: the exact atom at zero of a rank-deficient block, atoms made by the flow."""

import warnings

import numpy as np
import pytest

from freedecomp import FreeDecompressionWarning, decompress, laws
from spectra.testing import wasserstein1


@pytest.mark.parametrize("method", ["algebraic", "auto"])
def test_rank_deficient_block_keeps_the_rank(method):
    # MP of ratio 2 at n = 400: rank 200, 200 exact zeros; decompressed by 4 the rank is
    # kept (it is the column count), so the atom is 1 - (1 - 1/2)/4 = 0.875
    law = laws.MarchenkoPastur(2.0)
    A = law.sample_matrix(400, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(A, 1600, method=method, rng=0)
    zero = [w for a, w in r.atoms if a == 0.0]
    assert len(zero) == 1 and zero[0] == pytest.approx(0.875, abs=0.01), r.atoms
    assert r.diagnostics.zero_fraction == pytest.approx(0.5)
    assert r.diagnostics.checks["atom"].passed
    if method == "algebraic":
        assert wasserstein1(r.density, law.decompressed(4).to_density()) < 0.05


def test_marchenko_pastur_block_grows_its_atom_past_ratio_one():
    # a block of ratio c = 1/4 decompressed by 8 has ratio 2: atom 1 - 1/2 at zero
    law = laws.MarchenkoPastur(0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FreeDecompressionWarning)
        r = decompress(law.sample_matrix(300, 1), 2400, rng=1)
    near_zero = sum(w for a, w in r.atoms if abs(a) < 0.05)
    assert near_zero == pytest.approx(0.5, abs=0.03), (r.diagnostics.model, r.atoms)
    assert r.diagnostics.zero_fraction == 0.0  # created by the flow, not by the input


def test_too_heavy_atom_at_zero_breaks_the_rank_bound():
    from freedecomp.invariants import run_checks
    from freedecomp.result import GridEvaluation

    x = np.linspace(0.5, 1.5, 101)
    rho = np.ones_like(x)
    ev = GridEvaluation(x=x, rho=rho * 0.05 / np.trapezoid(rho, x), atoms=[(0.0, 0.95)],
                        mass=1.0)
    eigs = np.concatenate([np.zeros(50), np.linspace(0.5, 1.5, 50)])
    c = run_checks(ev, eigs, 4.0, psd=True, zero_fraction=0.5, raw_mass=1.0)["atom"]
    assert not c.passed and c.severe and "rank bound" in c.message
