"""The torch-CUDA paths: vectors stay on the GPU and answers equal the numpy ones for
the same probes (equal CPU torch generators, :func:`helpers.same_probes`).

Skipped where no CUDA device is present (CI); run on a GPU machine with
``pytest tests/spectra/test_cuda.py``.
"""

import numpy as np
import pytest
from helpers import same_probes

import spectra
from spectra.testing import matrix_from_eigenvalues

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def pair():
    lam = np.concatenate([np.linspace(0.0, 1.0, 395), [2.0, 2.5, 3.0, 4.0, 5.0]])
    A = matrix_from_eigenvalues(lam, rng=0)
    return A, torch.tensor(A, device="cuda"), lam


def test_lanczos_basis_on_gpu(pair):
    A, At, _ = pair
    a = spectra.lanczos(A, 40, rng=same_probes(1))
    b = spectra.lanczos(At, 40, rng=same_probes(1))
    assert b.basis.is_cuda
    np.testing.assert_allclose(a.alpha, b.alpha, rtol=1e-9)


def test_eigsh_trace_density_on_gpu(pair):
    A, At, lam = pair
    e = spectra.eigsh(At, k=3, tol=1e-10, rng=0)
    assert e.eigenvectors.is_cuda
    np.testing.assert_allclose(e.eigenvalues, [5.0, 4.0, 3.0], rtol=1e-9)
    for method in ("hutchinson", "hutchpp", "xtrace"):
        a = spectra.trace(A, 60, method=method, rng=same_probes(2))
        b = spectra.trace(At, 60, method=method, rng=same_probes(2))
        np.testing.assert_allclose(a.value, b.value, rtol=1e-9)
    d = spectra.diagonal(At, 60, rng=same_probes(2))
    np.testing.assert_allclose(d.value, spectra.diagonal(A, 60, rng=same_probes(2)).value,
                               rtol=1e-8, atol=1e-10)
    for method in ("slq", "kpm"):
        a = spectra.density(A, method=method, num_probes=4, num_steps=30, rng=same_probes(3))
        b = spectra.density(At, method=method, num_probes=4, num_steps=30, rng=same_probes(3))
        np.testing.assert_allclose(a.rho, b.rho, rtol=1e-7, atol=1e-9)
    ld = spectra.logdet(At + 0.5 * torch.eye(400, device="cuda", dtype=At.dtype), num_probes=8,
                        num_steps=30, rng=0)
    assert abs(ld.value - np.log(lam + 0.5).sum()) < 4 * ld.stderr


def test_float32_gpu_generator_probes(pair):
    _, At, lam = pair
    g = torch.Generator(device="cuda").manual_seed(0)
    den = spectra.density(At.float(), num_probes=4, num_steps=30, rng=g)
    assert spectra.testing.wasserstein1(den, lam) < 0.05


def test_probes_from_a_seed_are_drawn_on_the_device(pair):
    # the one derivation (spectra.probes): probe j by a CUDA torch.Generator seeded with
    # the j-th 63-bit integer of the numpy stream, in the operator's dtype
    from spectra.probes import as_rng, draw

    _, At, _ = pair
    z = draw("gaussian", 400, 2, like=At.float(), rng=as_rng(5))
    assert z.is_cuda and z.dtype == torch.float32
    seeds = np.random.default_rng(5)
    for j in range(2):
        gen = torch.Generator(device="cuda").manual_seed(int(seeds.integers(0, 2**63)))
        assert torch.equal(z[:, j], torch.randn(400, generator=gen, device="cuda"))


def test_lanczos_in_place_on_gpu_is_exact(pair):
    A, At, lam = pair
    res = spectra.lanczos(At, 400, reorth="full", rng=0)
    assert res.basis.is_cuda
    np.testing.assert_allclose(np.linalg.eigvalsh(res.tridiagonal()), lam, rtol=1e-9,
                               atol=1e-11)
