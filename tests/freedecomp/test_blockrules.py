"""Gauss-Radau rules of PSD SLQ blocks and the W1 envelope bound (dense references)."""

import numpy as np
import pytest

import spectra
from freedecomp.blockrules import envelope_error, radau_rules
from freedecomp.blocks import block_spectrum
from spectra.distances import wasserstein1
from spectra.testing import matrix_from_eigenvalues


def _decades(n: int = 500, seed: int = 0) -> np.ndarray:
    """A kernel-like spectrum over ten decades: 80% of it below 1e-4, a few large ones."""
    g = np.random.default_rng(seed)
    low = 10.0 ** g.uniform(-10, -4, int(0.8 * n))
    mid = 10.0 ** g.uniform(-4, 0, n - int(0.8 * n) - 5)
    return np.sort(np.concatenate([low, mid, [5.0, 12.0, 30.0, 60.0, 150.0]]))


def _probe_rules(A, lam_vecs, k: int, p: int, seed: int):
    """Gauss and Radau rules of p probes, and each probe's exact spectral measure."""
    lam, U = lam_vecs
    Z = np.random.default_rng(seed).standard_normal((A.shape[0], p))
    res = spectra.lanczos(A, k, v0=Z, reorth="full")
    gauss = []
    for i in range(p):
        theta, tau = res.ritz(i)
        gauss.append((theta, tau**2))
    radau = radau_rules(res, 1.0, 0.0)
    exact = [(lam, (U.T @ z) ** 2 / (z @ z)) for z in Z.T]
    return gauss, radau, exact


def _pooled(rules):
    x = np.concatenate([r[0] for r in rules])
    w = np.concatenate([r[1] / r[1].sum() for r in rules]) / len(rules)
    return x, w


def test_one_gauss_rule_gives_the_chebyshev_markov_stieltjes_sum():
    x = np.array([0.0, 1.0, 3.0, 3.5])
    w = np.array([0.1, 0.4, 0.3, 0.2])
    want = 1.0 * 0.4 + 2.0 * 0.4 + 0.5 * 0.3
    assert envelope_error([[(x, w)]]) == pytest.approx(want, rel=1e-12)
    # a lower bound below the nodes adds the stretch where the mass may lie below x_0
    assert envelope_error([[(x + 1.0, w)]], lower=0.0) == pytest.approx(want + 0.1)


@pytest.mark.parametrize("k", [8, 20])
def test_envelope_bound_covers_the_pooled_probe_measures(k):
    lam = _decades()
    A = matrix_from_eigenvalues(lam, rng=1)
    lam_u = np.linalg.eigh(A)
    gauss, radau, exact = _probe_rules(A, lam_u, k, 6, seed=k)
    truth = _pooled(exact)
    both = [[g, r] for g, r in zip(gauss, radau, strict=True)]
    mix = _pooled([_pooled(pr) for pr in both])
    assert wasserstein1(*mix[:1], truth[0], mix[1], truth[1]) <= envelope_error(both, 0.0)
    g_only = _pooled(gauss)
    assert wasserstein1(g_only[0], truth[0], g_only[1], truth[1]) <= envelope_error(
        [[g] for g in gauss], 0.0)
    # the Radau rules: a node at the lower bound, weights summing to one, same trace
    for (xg, wg), (xr, wr) in zip(gauss, radau, strict=True):
        assert xr.min() == 0.0 and wr.sum() == pytest.approx(1.0)
        assert xr @ wr == pytest.approx(xg @ wg, rel=1e-9)


def test_psd_block_over_decades_keeps_its_log_det():
    """Gauss rules put the unresolved low end too high; the Gauss-Radau midpoint does not.

    Twelve decades, geometric (a kernel's decay): two thirds of the eigenvalues are
    below 1e-4 of the largest; 20 steps do not resolve them.
    """
    n = 1000
    lam = np.sort(100.0 * 10.0 ** (-12.0 * np.arange(n) / n))
    A = matrix_from_eigenvalues(lam, rng=0)
    mean = float(lam.mean())

    def logdet(e, rho):
        return float(np.sum(np.log(np.clip(e, 0.0, None) + rho)))

    kw = {"dense_max": 0, "num_probes": 8, "num_steps": 20}
    psd = block_spectrum(A, psd=True, rng=0, **kw)
    gauss = block_spectrum(A, psd=False, rng=0, **kw)
    assert psd.eigs.sum() == pytest.approx(gauss.eigs.sum(), rel=1e-9)  # one trace
    for rho in (1e-3 * mean, 1e-4 * mean):
        true = logdet(lam, rho)
        e_psd, e_g = logdet(psd.eigs, rho) / true - 1, logdet(gauss.eigs, rho) / true - 1
        assert abs(e_psd) < 0.6 * abs(e_g), (rho, e_psd, e_g)
    for bs in (psd, gauss):  # both errors cover the truth
        assert wasserstein1(bs.eigs, lam) <= bs.error
    assert wasserstein1(psd.eigs, lam) < wasserstein1(gauss.eigs, lam)
    assert psd.quadrature_error < 0.7 * gauss.quadrature_error


@pytest.mark.parametrize("spikes", [(400.0, 250.0, 120.0), ()])
def test_deflated_measures_keep_the_run_behind_their_rules(spikes):
    """With and without deflated outliers, one Lanczos row per rule (the Radau input)."""
    from spectra.quadrature import slq_measure

    g = np.random.default_rng(0)
    lam = np.sort(np.concatenate([g.uniform(0.0, 2.0, 400 - len(spikes)), spikes]))
    m = slq_measure(matrix_from_eigenvalues(lam, rng=0), num_probes=5, num_steps=30,
                    deflate=True, rng=1)
    c = m.deflated.size
    assert (c > 0) == bool(spikes)
    assert m.lanczos is not None and m.lanczos.alpha.shape[0] == len(m.nodes)
    for (x, w), (xr, wr) in zip(zip(m.nodes, m.weights, strict=True),
                                radau_rules(m.lanczos, m.scale, 0.0), strict=True):
        xg, wg = x[c:], w[c:] / w[c:].sum()
        assert xr.min() == 0.0 and xr @ wr == pytest.approx(xg @ wg, rel=1e-9)
