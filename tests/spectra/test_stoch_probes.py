"""Probes are born where the operator lives, one probe at a time (issue 14, item 1)."""

import numpy as np
import pytest
import scipy.stats

from spectra import as_operator, diagonal, trace
from spectra.probes import PROBES, as_rng, draw
from spectra.testing import matrix_from_eigenvalues

torch = pytest.importorskip("torch")

LIKES = {
    "numpy-f64": np.zeros(1), "numpy-f32": np.zeros(1, np.float32),
    "torch-f64": torch.zeros(1, dtype=torch.float64), "torch-f32": torch.zeros(1),
}


@pytest.mark.parametrize("kind", PROBES)
@pytest.mark.parametrize("like", list(LIKES))
def test_framework_dtype_and_batch_invariance(kind, like):
    ref = LIKES[like]
    whole = draw(kind, 257, 7, like=ref, rng=as_rng(5))
    assert type(whole) is type(ref) and whole.dtype == ref.dtype and whole.shape == (257, 7)
    g = as_rng(5)
    parts = [draw(kind, 257, b, like=ref, rng=g) for b in (1, 2, 4)]
    cat = np.concatenate([np.asarray(p) for p in parts], axis=1)
    assert np.array_equal(np.asarray(whole), cat)  # block size never changes the probes


@pytest.mark.parametrize("kind", PROBES)
def test_numpy_probes_do_not_depend_on_the_dtype(kind):
    base = draw(kind, 300, 4, like=LIKES["numpy-f64"], rng=as_rng(9))
    z = draw(kind, 300, 4, like=LIKES["numpy-f32"], rng=as_rng(9)).astype(np.float64)
    np.testing.assert_allclose(z, base, rtol=0, atol=4e-7 * np.abs(base).max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", PROBES)
def test_torch_probes_from_a_numpy_seed_twin(kind, dtype):
    # twin of the one documented derivation: probe j is drawn by torch, in the
    # operator's dtype, by a torch.Generator seeded with the j-th 63-bit integer
    n, k = 1001, 3
    z = draw(kind, n, k, like=torch.zeros(1, dtype=dtype), rng=as_rng(9))
    assert isinstance(z, torch.Tensor) and z.dtype == dtype
    seeds = np.random.default_rng(9)
    for j in range(k):
        gen = torch.Generator().manual_seed(int(seeds.integers(0, 2**63)))
        want = draw(kind, n, 1, like=torch.zeros(1, dtype=dtype), rng=gen)[:, 0]
        assert torch.equal(z[:, j], want)
    if kind == "gaussian":
        gen = torch.Generator().manual_seed(int(np.random.default_rng(9).integers(0, 2**63)))
        assert torch.equal(z[:, 0], torch.randn(n, generator=gen, dtype=dtype))
    # bit-reproducible for a seed, different for another, a numpy Generator consumed
    assert torch.equal(draw(kind, n, k, like=torch.zeros(1, dtype=dtype), rng=9), z)
    assert not torch.equal(draw(kind, n, k, like=torch.zeros(1, dtype=dtype), rng=10), z)


def test_distributions():
    z = np.asarray(draw("rademacher", 20000, 3, like=np.zeros(1), rng=as_rng(0)))
    assert set(np.unique(z)) == {-1.0, 1.0}
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    g = np.asarray(draw("gaussian", 20000, 2, like=np.zeros(1), rng=as_rng(1)))
    assert scipy.stats.kstest(g.ravel(), "norm").pvalue > 1e-3
    s = np.asarray(draw("sphere", 5000, 3, like=np.zeros(1, np.float32), rng=as_rng(2)))
    np.testing.assert_allclose(np.linalg.norm(s.astype(float), axis=0), np.sqrt(5000),
                               rtol=1e-6)


def test_isotropic_second_moment():
    Z = np.asarray(draw("rademacher", 6, 40000, like=np.zeros(1), rng=as_rng(3)))
    np.testing.assert_allclose(Z @ Z.T / Z.shape[1], np.eye(6), atol=0.03)


@pytest.mark.parametrize("kind", PROBES)
def test_torch_generator_on_numpy_and_torch(kind):
    a = draw(kind, 100, 3, like=np.zeros(1), rng=torch.Generator().manual_seed(0))
    b = draw(kind, 100, 3, like=torch.zeros(1, dtype=torch.float64),
             rng=torch.Generator().manual_seed(0))
    assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
    np.testing.assert_array_equal(a, b.numpy())
    g = torch.Generator().manual_seed(0)
    c = np.concatenate([draw(kind, 100, 1, like=np.zeros(1), rng=g) for _ in range(3)], axis=1)
    np.testing.assert_array_equal(a, c)


def test_no_float64_copy_for_float32_operators():
    import tracemalloc

    n = 200_000
    tracemalloc.start()
    z = draw("gaussian", n, 4, like=np.zeros(1, np.float32), rng=as_rng(0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert z.dtype == np.float32
    assert peak < 1.2 * 4 * n * 4 + 2**20  # the block itself plus a 512 KiB chunk


def test_estimates_do_not_depend_on_block_size():
    A = matrix_from_eigenvalues(np.geomspace(1.0, 1e-3, 50), rng=0)
    for method in ("hutchinson", "xtrace", "hutchpp"):
        a = trace(A, 20, method=method, rng=4)
        b = trace(A, 20, method=method, rng=4, block_size=3)
        np.testing.assert_allclose(b.value, a.value, rtol=1e-12)
    d1, d2 = diagonal(A, 20, rng=2), diagonal(A, 20, rng=2, block_size=1)
    np.testing.assert_allclose(d2.value, d1.value, rtol=1e-10, atol=1e-14)


def test_torch_and_numpy_in_float32():
    # an integer seed: different probes, each unbiased (the truth within the error bars);
    # equal torch generators: the same probes, the same answer
    A = matrix_from_eigenvalues(np.geomspace(1.0, 1e-2, 40), rng=0)
    truth = float(np.trace(A))
    a = trace(as_operator(A.astype(np.float32)), 10, method="hutchinson", rng=0)
    b = trace(as_operator(torch.from_numpy(A).float()), 10, method="hutchinson", rng=0)
    assert a.value != b.value
    for est in (a, b):
        assert abs(est.value - truth) <= 3 * est.stderr
    c = trace(as_operator(A.astype(np.float32)), 10, method="hutchinson",
              rng=torch.Generator().manual_seed(0))
    d = trace(as_operator(torch.from_numpy(A).float()), 10, method="hutchinson",
              rng=torch.Generator().manual_seed(0))
    assert c.value == pytest.approx(d.value, rel=1e-6)


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (True, TypeError), (2.5, TypeError),
                                     ("0", TypeError), (np.random.RandomState(0), TypeError)])
def test_bad_rng(bad, exc):
    with pytest.raises(exc, match="rng"):
        as_rng(bad)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 100, 1001])
def test_torch_rademacher_signs_are_the_bits_of_random_bytes(n):
    # twin: the bytes the generator draws, unpacked most significant bit first
    z = draw("rademacher", n, 2, like=torch.zeros(1), rng=torch.Generator().manual_seed(6))
    g = torch.Generator().manual_seed(6)
    for j in range(2):
        raw = torch.randint(0, 256, (-(-n // 8),), generator=g, dtype=torch.uint8).numpy()
        want = np.unpackbits(raw)[:n] * 2.0 - 1.0
        np.testing.assert_array_equal(z[:, j].numpy(), want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tail", [0, 5, 16, 100])
def test_cpu_gaussian_drawn_in_pieces_equals_one_randn(dtype, tail):
    # long CPU probes are drawn by torch.randn in cache-sized pieces; the numbers are
    # bitwise those of one call, whatever the remainder (below 16 it joins a piece)
    from spectra.probes import RANDN_PIECE, _randn

    n = 3 * RANDN_PIECE + tail
    out = torch.empty(n, dtype=dtype)
    _randn(torch.Generator().manual_seed(4), out)
    want = torch.randn(n, generator=torch.Generator().manual_seed(4), dtype=dtype)
    assert torch.equal(out, want)
    z = draw("gaussian", n, 2, like=torch.zeros(1, dtype=dtype), rng=torch.Generator()
             .manual_seed(6))
    gen = torch.Generator().manual_seed(6)
    assert torch.equal(z[:, 0], torch.randn(n, generator=gen, dtype=dtype))
    assert torch.equal(z[:, 1], torch.randn(n, generator=gen, dtype=dtype))
