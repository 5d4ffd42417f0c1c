"""Kernel-matrix operators against dense kernel matrices built from exact distances."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import spectra
from spectra.operators import KERNELS, median_bandwidth

H = 1.7
BANDWIDTH = ("rbf", "laplace", "matern32", "matern52")


def dense_kernel(X, name, h=H, degree=3, gamma=None, coef0=1.0):
    """The kernel matrix from pairwise differences (no norm expansion)."""
    X = np.asarray(X, dtype=np.float64)
    D = cdist(X, X)
    if name == "rbf":
        return np.exp(-(D**2) / (2 * h * h))
    if name == "laplace":
        return np.exp(-D / h)
    if name == "matern32":
        r = math.sqrt(3) * D / h
        return (1 + r) * np.exp(-r)
    if name == "matern52":
        r = math.sqrt(5) * D / h
        return (1 + r + r * r / 3) * np.exp(-r)
    if name == "polynomial":
        gamma = 1.0 / X.shape[1] if gamma is None else gamma
        return (gamma * (X @ X.T) + coef0) ** degree
    if name == "linear":
        return X @ X.T
    Z = X / np.linalg.norm(X, axis=1)[:, None]
    return Z @ Z.T


def make(X, name, **kw):
    if name in BANDWIDTH:
        kw.setdefault("bandwidth", H)
    return spectra.kernel_operator(X, name, **kw)


@pytest.fixture(scope="module")
def points():
    g = np.random.default_rng(0)
    X = g.standard_normal((203, 5)) + 3.0  # off-centre: the operator centres internally
    X[17] = X[4]  # an exact duplicate pair
    X[30] = X[8] + 1e-9  # and a near-duplicate one
    return X, g.standard_normal((203, 3))


def _close(got, ref, rtol):
    got = np.asarray(got, dtype=np.float64)
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= rtol * scale, np.abs(got - ref).max() / scale


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("block_size", [7, 50, 1000])
def test_products_match_dense_float64(points, name, block_size):
    X, V = points
    K = make(X, name, block_size=block_size)
    R = dense_kernel(X, name)
    _close(K.matmat(V), R @ V, 1e-12)
    _close(K.matvec(V[:, 0]), R @ V[:, 0], 1e-12)
    assert K.symmetric is True and K.num_matvecs == 4
    assert K.matmat(V).dtype == np.float64


@pytest.mark.parametrize("name", KERNELS)
def test_torch_products_match_dense(points, name):
    torch = pytest.importorskip("torch")
    X, V = points
    K = make(torch.as_tensor(X), name, block_size=100)
    R = dense_kernel(X, name)
    out = K.matmat(torch.as_tensor(V))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert K.backend == "torch" and str(K.device) == "cpu"
    _close(out.numpy(), R @ V, 1e-12)
    _close(K.matvec(torch.as_tensor(V[:, 1])).numpy(), R @ V[:, 1], 1e-12)
    blk = K.block(torch.tensor([3, 17, 4]), torch.tensor([4, 0]))
    _close(blk.numpy(), R[np.ix_([3, 17, 4], [4, 0])], 1e-12)
    if name not in ("linear", "cosine"):  # the CUDA tiles (torch ops), run here on the CPU
        _close(K._tiles_torch(torch.as_tensor(V)).numpy(), R @ V, 1e-12)
    Kg = make(torch.tensor(X, requires_grad=True), name, block_size=100)  # a leaf with grad
    _close(Kg.matmat(torch.as_tensor(V)).numpy(), R @ V, 1e-12)


@pytest.mark.parametrize("name", ["rbf", "matern52", "polynomial"])
def test_float32_follows_input(points, name):
    X, V = points
    K = make(X.astype(np.float32), name, block_size=37)
    out = K.matmat(V.astype(np.float32))
    assert K.dtype == np.float32 and out.dtype == np.float32
    _close(out, dense_kernel(X, name) @ V, 2e-5)


@pytest.mark.parametrize("name", KERNELS)
def test_blocks_are_slices_of_the_dense_matrix(points, name):
    X, _ = points
    K = make(X, name, shift=0.25)
    R = dense_kernel(X, name) + 0.25 * np.eye(X.shape[0])
    rows = np.array([5, 202, 4, 17, 4, 30, 8])  # unsorted, repeated, duplicate points
    cols = np.array([4, 0, 17, 8, 30])
    _close(K.block(rows, cols), R[np.ix_(rows, cols)], 1e-12)
    idx = np.sort(np.random.default_rng(3).choice(203, 40, replace=False))
    B = K.block(idx, idx)
    np.testing.assert_array_equal(B, B.T)
    _close(B, R[np.ix_(idx, idx)], 1e-12)
    _close(K.block(slice(None), slice(0, 203, 50)), R[:, ::50], 1e-12)
    _close(K.diagonal(), np.diag(R), 1e-12)


def test_shift_and_psd_flags(points):
    X, V = points
    K = make(X, "rbf")
    assert K.psd and K.shift == 0
    Ks = K.shifted(0.5)
    _close(Ks.matmat(V), dense_kernel(X, "rbf") @ V + 0.5 * V, 1e-12)
    assert Ks.psd and Ks.shift == 0.5 and K.shift == 0
    assert not K.shifted(-1.0).psd
    assert make(X, "rbf", shift=2.0).diagonal()[0] == pytest.approx(3.0)
    assert make(X, "polynomial", coef0=1.0).psd
    assert not make(X, "polynomial", coef0=-1.0).psd
    assert make(X, "cosine").psd and make(X, "linear").psd


def test_polynomial_parameters(points):
    X, V = points
    K = make(X, "polynomial", degree=2, gamma=0.3, coef0=0.5)
    _close(K.matmat(V), dense_kernel(X, "polynomial", degree=2, gamma=0.3, coef0=0.5) @ V,
           1e-12)


def test_threads_agree(points):
    numba = pytest.importorskip("numba")
    X, V = points
    K = make(X, "laplace", block_size=16)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = K.matmat(V)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_allclose(K.matmat(V), one, rtol=1e-13, atol=1e-13)


def test_callable_kernel_numpy_and_torch(points):
    X, V = points

    def rbf(A, B):
        return np.exp(-cdist(A, B, "sqeuclidean") / (2 * H * H))

    K = spectra.kernel_operator(X, rbf, block_size=60, psd=True)
    R = dense_kernel(X, "rbf")
    assert K.psd and K.bandwidth is None
    _close(K.matmat(V), R @ V, 1e-12)
    _close(K.block([1, 2], [2, 3]), R[np.ix_([1, 2], [2, 3])], 1e-12)
    _close(K.diagonal(), np.ones(203), 1e-12)
    torch = pytest.importorskip("torch")
    Kt = spectra.kernel_operator(torch.as_tensor(X),
                                 lambda A, B: torch.exp(-torch.cdist(A, B) ** 2 / (2 * H * H)))
    _close(Kt.matmat(torch.as_tensor(V)).numpy(), R @ V, 1e-12)


def test_median_heuristic(points):
    X, _ = points
    D = cdist(X, X)[np.triu_indices(203, 1)]
    assert median_bandwidth(X) == pytest.approx(np.median(D), rel=1e-12)
    K = spectra.kernel_operator(X)
    assert K.bandwidth == pytest.approx(np.median(D), rel=1e-12)
    big = np.random.default_rng(1).standard_normal((1500, 3))
    h0, h1 = median_bandwidth(big), median_bandwidth(big, rng=5)
    assert h0 == median_bandwidth(big, rng=0) and h0 != h1  # deterministic default
    idx = np.sort(np.random.default_rng(0).choice(1500, 1000, replace=False))
    sub = cdist(big[idx], big[idx])[np.triu_indices(1000, 1)]
    assert h0 == pytest.approx(np.median(sub), rel=1e-12)


def test_slq_density_on_a_kernel_operator():
    X = np.random.default_rng(2).standard_normal((300, 2))
    K = spectra.kernel_operator(X, "rbf", bandwidth=1.0)
    lam = np.linalg.eigvalsh(dense_kernel(X, "rbf", h=1.0))
    den = spectra.density(K, num_probes=8, num_steps=40, rng=0)
    w1 = spectra.testing.wasserstein1(den, lam)
    assert w1 < 0.02 * (lam[-1] - lam[0]), w1


def test_integer_points_become_float64():
    K = spectra.kernel_operator(np.arange(12).reshape(6, 2), "linear")
    assert K.dtype == np.float64
    _close(K.matvec(np.ones(6)), dense_kernel(np.arange(12.0).reshape(6, 2), "linear").sum(1),
           1e-14)


@pytest.mark.parametrize(
    ("X", "kw", "exc", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), {}, ValueError, "NaN or Inf"),
        (np.zeros((0, 3)), {}, ValueError, "no points"),
        (np.zeros((3, 0)), {}, ValueError, "no features"),
        (np.ones(5), {}, ValueError, "2-d"),
        (np.ones((4, 2), dtype=complex), {}, TypeError, "float32, float64"),
        (np.ones((4, 2), dtype=np.float16), {}, TypeError, "float32, float64"),
        (np.eye(4), {"bandwidth": 0.0}, ValueError, "positive"),
        (np.eye(4), {"bandwidth": -1.0}, ValueError, "positive"),
        (np.eye(4), {"bandwidth": np.inf}, ValueError, "positive"),
        (np.eye(4), {"kernel": "sigmoid"}, ValueError, "unknown kernel"),
        (np.eye(4), {"kernel": 3}, TypeError, "name or a callable"),
        (np.eye(4), {"kernel": "linear", "bandwidth": 1.0}, ValueError, "has no bandwidth"),
        (np.eye(4), {"nu": 1.5}, TypeError, "unknown parameters"),
        (np.eye(4), {"kernel": "polynomial", "degree": 0}, ValueError, "degree"),
        (np.eye(4), {"kernel": "polynomial", "degree": 1.5}, ValueError, "degree"),
        (np.eye(4), {"kernel": "polynomial", "gamma": -1.0}, ValueError, "gamma"),
        (np.eye(4), {"block_size": 0}, ValueError, "block_size"),
        (np.eye(4), {"block_size": "big"}, ValueError, "block_size"),
        (np.eye(4), {"kernel": "polynomial", "degree": np.inf}, ValueError, "degree"),
        (np.eye(4), {"shift": np.nan}, ValueError, "shift"),
        (np.ones((5, 2)), {}, ValueError, "median pairwise distance is 0"),
        (np.ones((1, 2)), {}, ValueError, "at least 2 points"),
        (np.vstack([np.zeros(2), np.ones(2)]), {"kernel": "cosine"}, ValueError, "zero norm"),
        (np.eye(4), {"kernel": lambda A, B: np.ones((len(A), len(B) + 1))}, ValueError,
         r"returned shape \(4, 5\) for blocks of 4 and 4 points; expected \(4, 4\)"),
        (np.eye(4), {"kernel": lambda A, B: A @ B.T + np.triu(np.ones((len(A), len(B))))},
         ValueError, "not symmetric"),
        (np.eye(4), {"kernel": lambda A, B: np.full((len(A), len(B)), np.nan)}, ValueError,
         "NaN or Inf"),
    ],
)
def test_bad_input_is_refused(X, kw, exc, match):
    kw = dict(kw)
    kernel = kw.pop("kernel", "rbf")
    with pytest.raises(exc, match=match):
        spectra.kernel_operator(X, kernel, **kw)


def test_bad_products_and_indices_are_refused(points):
    X, V = points
    K = make(X, "rbf")
    with pytest.raises(ValueError, match="expects a vector of shape"):
        K.matvec(np.ones(5))
    with pytest.raises(ValueError, match="expects a block of shape"):
        K.matmat(np.ones((5, 2)))
    bad = V.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        K.matmat(bad)
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 203\)"):
        K.block([0, 203], [1])
    with pytest.raises(ValueError, match="cols must be a 1-d array of integer indices"):
        K.block([0], [[1, 2]])
    with pytest.raises(ValueError, match="finite"):
        K.shifted(np.inf)
    shapes = K.block(np.array([], dtype=int), [1, 2]).shape
    assert shapes == (0, 2)
