"""Closed-form laws: densities, both sheets, atoms, exact decompression maps, samplers."""

import mpmath
import numpy as np
import pytest

from freedecomp import laws
from freedecomp.models import CurveModel
from spectra.testing import wasserstein1

LAWS = [
    laws.Wigner(2.0),
    laws.MarchenkoPastur(0.25, 2.0),
    laws.MarchenkoPastur(3.0),
    laws.KestenMcKay(6.0, 0.5),
    laws.Wachter(3.0, 5.0),
    laws.Wachter(0.6, 2.0),
    laws.FreeMeixner(0.5, 0.3),
]


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_density_is_im_stieltjes_and_unit_mass(law):
    lo, hi = law.support
    x = np.linspace(lo, hi, 9)[1:-1]
    np.testing.assert_allclose(law.stieltjes(x + 1e-13j).imag / np.pi, law.density(x),
                               atol=1e-9)
    d = law.to_density()
    cont = np.sum(d.weights[: d.weights.size - len(law.atoms)])
    atoms = sum(m for _, m in law.atoms)
    assert abs(d.weights.sum() - 1) < 1e-12
    # the continuous part and the atoms add to one before any normalisation
    th = (np.arange(40000) + 0.5) * np.pi / 40000
    c, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
    raw = np.sum(law.density(c - h * np.cos(th)) * h * np.sin(th)) * np.pi / 40000
    assert abs(raw + atoms - 1) < 1e-9
    assert cont > 0


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_sheets_solve_the_curve_and_herglotz(law):
    z = np.array([0.3 + 0.7j, -1.5 + 0.2j, 4.0 + 3.0j, 0.1 + 1e-3j])
    C = law.curve()
    for sheet in (1, 2):
        m = law.stieltjes(z, sheet=sheet)
        res = sum(C[i, j] * z**i * m**j for i in range(3) for j in range(3))
        assert np.max(np.abs(res)) < 1e-10
    m1 = law.stieltjes(z)
    assert np.all(m1.imag > 0)
    big = 1e6 + 1e6j
    assert abs(law.stieltjes(big) * big + 1) < 1e-5


def test_meixner_density_against_mpmath():
    a, b = 0.5, 0.3
    law = laws.FreeMeixner(a, b)
    lo, hi = law.support
    f = lambda x: mpmath.sqrt(4 * (1 + b) - (x - a) ** 2) / (2 * mpmath.pi * (b * x**2 + a * x + 1))  # noqa: E731
    assert abs(mpmath.quad(f, [lo, a, hi]) - 1) < 1e-12
    for x in (lo + 0.1, 0.0, hi - 0.2):
        assert abs(law.density(x) - float(f(x))) < 1e-12
    # mean 0, variance 1 (standard form)
    d = law.to_density()
    assert abs(np.sum(d.weights * d.nodes)) < 1e-8
    assert abs(np.sum(d.weights * d.nodes**2) - 1) < 1e-8


def test_atoms():
    assert laws.MarchenkoPastur(4.0).atoms == [(0.0, 0.75)]
    km = laws.KestenMcKay(1.5)
    generic = laws.QuadraticLaw.atoms.fget(km)
    assert len(generic) == 2 and all(abs(w - 0.25) < 1e-9 for _, w in generic)
    w = laws.Wachter(0.6, 0.8)
    assert w.atoms == [(0.0, pytest.approx(0.4)), (1.0, pytest.approx(0.2))]
    assert abs(sum(m for _, m in laws.QuadraticLaw.atoms.fget(w)) - 0.6) < 1e-9


CASES = [
    (laws.Wigner(1.0), (2, 8, 32)),
    (laws.MarchenkoPastur(1 / 64, 1.5), (2, 8, 32, 128)),
    (laws.KestenMcKay(96.0), (2, 8, 32)),
    (laws.Wachter(48.0, 64.0), (2, 8, 32)),
    (laws.FreeMeixner(0.1, 0.02), (2, 8, 32)),
]


@pytest.mark.parametrize(("law", "alphas"), CASES, ids=lambda v: repr(v))
def test_exact_curve_decompresses_to_the_transformed_law(law, alphas):
    model = CurveModel("exact", 0, law.curve(), 0.0, 1.0)
    for alpha in alphas:
        target = law.decompressed(alpha)
        lo, hi = target.support
        x = lo + (hi - lo) * np.linspace(0.01, 0.99, 200)
        m, res = model.solve(alpha, x)
        peak = target.density(x).max()
        assert np.max(np.abs(m.imag / np.pi - target.density(x))) < 1e-8 * max(peak, 1)
        assert res.max() < 1e-12
        atoms = model.atoms(alpha)
        assert len(atoms) == len(target.atoms)
        for (a0, w0), (a1, w1) in zip(sorted(atoms), sorted(target.atoms), strict=True):
            assert abs(a0 - a1) < 1e-6 and abs(w0 - w1) < 1e-6


def test_decompression_maps():
    assert laws.Wigner(2.0).decompressed(4).radius == pytest.approx(4.0)
    assert laws.MarchenkoPastur(0.1, 2.0).decompressed(5).ratio == pytest.approx(0.5)
    km = laws.KestenMcKay(8.0).decompressed(2)
    assert (km.d, km.scale) == (4.0, 2.0)
    with pytest.raises(ValueError, match="not decompressible"):
        laws.KestenMcKay(4.0).decompressed(8)
    with pytest.raises(ValueError, match="not decompressible"):
        laws.Wachter(1.0, 1.0).decompressed(4)
    with pytest.raises(ValueError, match="alpha"):
        laws.Wigner(1.0).decompressed(0.5)


@pytest.mark.parametrize("law", [laws.Wigner(2.0), laws.MarchenkoPastur(0.5),
                                 laws.KestenMcKay(4.0), laws.Wachter(2.0, 3.0),
                                 laws.FreeMeixner(0.4, 0.2)], ids=repr)
def test_sampler_matches_law(law):
    rng = np.random.default_rng(7)
    A = law.sample_matrix(300, rng)
    assert np.allclose(A, A.T)
    e = np.linalg.eigvalsh(A)
    lo, hi = law.support
    # finite-n fluctuations of the ESD are O(1/n) of the width; 2% is a loose bound
    assert wasserstein1(e, law.to_density()) < 0.02 * (hi - lo)
    # a principal block is a compression: its law is the inverse decompression
    blk = np.linalg.eigvalsh(A[:150, :150])
    # (free cumulant k2 scales by tau = 1/2 under compression)
    var = law.to_density().moment(2) - law.mean() ** 2
    assert np.isclose(blk.var(), 0.5 * var, rtol=0.2)


@pytest.mark.parametrize("ratio", [0.3, 2.5])
def test_deformed_law_with_one_population_atom_is_marchenko_pastur(ratio):
    deformed = laws.DeformedMarchenkoPastur([2.0], [1.0], ratio)
    mp = laws.MarchenkoPastur(ratio, 2.0)
    lo, hi = mp.support
    x = np.linspace(lo, hi, 41)[1:-1]
    np.testing.assert_allclose(deformed.density(x), mp.density(x), rtol=1e-7, atol=1e-9)
    z = x + 0.5j
    np.testing.assert_allclose(deformed.stieltjes(z), mp.stieltjes(z), rtol=1e-10)
    assert np.allclose(np.reshape(deformed.atoms, (-1, 2)), np.reshape(mp.atoms, (-1, 2)))
    assert wasserstein1(deformed.to_density(), mp.to_density()) < 1e-3 * (hi - lo)
    assert deformed.decompressed(2).ratio == pytest.approx(2 * ratio)


def test_population_fit_recovers_the_population():
    from freedecomp.models import fit_population

    law = laws.DeformedMarchenkoPastur([1.0, 6.0], [0.5, 0.5], 0.05)
    e = np.linalg.eigvalsh(law.sample_matrix(600, np.random.default_rng(3)))
    t, w, resid = fit_population(e, law.ratio)
    assert np.all(t > 0) and abs(w.sum() - 1) < 1e-12 and resid < 0.05
    # the sample's spread around each atom is O(sqrt(c)); the fit must undo it
    assert wasserstein1(t, law.population, w, law.weights) < 0.2 * wasserstein1(
        e, law.population, None, law.weights)
    assert abs(np.sum(w * t) - 3.5) < 0.1
