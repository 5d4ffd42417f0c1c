"""Each Numba kernel against a plain NumPy twin."""

import numpy as np
from helpers import pick
from numpy.polynomial import chebyshev as C

from spectra._numba.densities import chebyshev_series, gaussian_mixture


def gaussian_mixture_twin(nodes, weights, sigmas, grid):
    d = grid[:, None] - nodes[None, :]
    return (weights / sigmas * np.exp(-0.5 * (d / sigmas) ** 2)).sum(axis=1) / np.sqrt(2 * np.pi)


def test_gaussian_mixture_matches_twin():
    g = np.random.default_rng(0)
    nodes, weights = g.normal(size=300), g.uniform(size=300)
    grid = np.linspace(-4, 4, 501)
    for sigma in (1e-3, 0.05, 0.7):
        sigmas = sigma * g.uniform(0.5, 2.0, size=300)
        np.testing.assert_allclose(
            gaussian_mixture(nodes, weights, sigmas, grid),
            gaussian_mixture_twin(nodes, weights, sigmas, grid),
            rtol=1e-12, atol=1e-14,
        )


def test_chebyshev_series_matches_numpy():
    g = np.random.default_rng(1)
    t = np.cos(np.linspace(0, np.pi, 333))
    for K in (1, 2, 7, 120):
        c = g.standard_normal(K)
        np.testing.assert_allclose(chebyshev_series(t, c), C.chebval(t, c), rtol=1e-10, atol=1e-12)


def test_lanczos_block_kernels_match_numpy():
    from spectra._numba.krylov import column_dots, scale_columns, three_term_update

    g = np.random.default_rng(2)
    for n, p, dtype in ((1, 1, np.float64), (1001, 7, np.float64), (513, 3, np.float32)):
        Q, W, P = (g.standard_normal((n, p)).astype(dtype) for _ in range(3))
        a, b = g.standard_normal(p), g.standard_normal(p)
        tol = pick(dtype, float64=1e-12, float32=1e-5)
        np.testing.assert_allclose(column_dots(Q, W), np.einsum("ij,ij->j", Q, W), rtol=tol)
        twin = W - Q * a - P * b
        ss = three_term_update(W, Q, P, a, b)
        np.testing.assert_allclose(W, twin, rtol=tol, atol=tol)
        np.testing.assert_allclose(ss, (twin.astype(np.float64) ** 2).sum(axis=0), rtol=tol)
        s = g.standard_normal(p)
        scale_columns(W, s)
        np.testing.assert_allclose(W, twin * s, rtol=tol, atol=tol)


def test_dot64_matches_numpy_twin():
    from spectra._numba.dots import dot64

    g = np.random.default_rng(4)
    for n, dtype in ((0, np.float64), (1, np.float32), (1000, np.float32), (70001, np.float64),
                     (100003, np.float32)):
        x, y = (g.standard_normal(n).astype(dtype) for _ in range(2))
        twin = float(np.sum(x.astype(np.float64) * y.astype(np.float64)))  # exact products
        scale = float(np.sum(np.abs(x.astype(np.float64) * y))) + 1e-300
        assert abs(dot64(x, y) - twin) <= 1e-13 * scale
    z = np.arange(10.0)[::2]  # a strided view is read in place
    assert dot64(z, z) == float(z @ z)


def test_coldots_long_and_short_columns_agree():
    from spectra.backend import coldots

    g = np.random.default_rng(5)
    X, Y = (g.standard_normal((70000, 3)).astype(np.float32) for _ in range(2))
    ref = np.einsum("ij,ij->j", X.astype(np.float64), Y.astype(np.float64))
    np.testing.assert_allclose(coldots(X, Y), ref, rtol=1e-6)  # compiled path
    short = np.einsum("ij,ij->j", X[:1000].astype(np.float64), Y[:1000].astype(np.float64))
    np.testing.assert_allclose(coldots(X[:1000], Y[:1000]), short, rtol=1e-6)  # numpy path


def test_parallel_kernels_leave_torch_thread_count_alone():
    # Numba's OpenMP layer would resize the OpenMP pool torch shares (1 -> core count).
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("torch")

    code = ("import torch, numpy as np\n"
            "before = torch.get_num_threads()\n"
            "from spectra.densities import smooth\n"
            "smooth(np.zeros(3), np.ones(3) / 3, np.linspace(-1, 1, 64), 0.1)\n"
            "print(before, torch.get_num_threads())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING")}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "1"]


# ---------------------------------------------------------------- kernel-matrix cores
def _kernel_twin(G, sq_r, sq_c, kind, a, b, degree):
    """NumPy twin of the kernel-value pass: inner products G -> kernel values."""
    if kind == 4:
        return (a * G + b) ** degree
    d2 = np.maximum(sq_r[:, None] + sq_c[None, :] - 2 * G, 0)
    if kind == 0:
        return np.exp(-a * d2)
    r = a * np.sqrt(d2)
    poly = {1: 1.0, 2: 1 + r, 3: 1 + r + r * r / 3}[kind]
    return poly * np.exp(-r)


def test_vectorised_exp_matches_numpy():
    from spectra._numba.kernels import exp_inplace32, exp_inplace64

    g = np.random.default_rng(4)
    for f, dtype, lo, rtol in ((exp_inplace64, np.float64, -708.0, 6e-16),
                               (exp_inplace32, np.float32, -87.0, 2.5e-7)):
        x = np.concatenate([np.linspace(lo, 0.0, 20001), g.uniform(-3, 0, 999), [0.0, -1e-30]])
        x = x.astype(dtype)
        y = x.copy()
        f(y, np.empty_like(y))
        ref = np.exp(x.astype(np.float64))
        assert np.max(np.abs(y - ref) / ref) < rtol
        z = np.array([lo - 1.0, -1e4, -np.inf], dtype=dtype)  # far below: exactly 0
        f(z, np.empty_like(z))
        np.testing.assert_array_equal(z, 0.0)


def test_kernel_rows_eval_matches_twin():
    from spectra._numba.kernels import kernel_rows_eval

    g = np.random.default_rng(5)
    Xr, Xc = g.standard_normal((9, 4)), g.standard_normal((13, 4))
    sr, sc = (Xr**2).sum(1), (Xc**2).sum(1)
    for kind, a in ((0, 0.3), (1, 0.7), (2, 1.1), (3, 0.9), (4, 0.25)):
        prm = np.array([a, 1.5, 1.0, 0.0, 1 / 3, 1e-4])
        G = Xr @ Xc.T
        twin = _kernel_twin(G, sr, sc, kind, a, 1.5, 3)
        kernel_rows_eval(G, sr, sc, Xr, Xc, kind, prm, 3, 2, 7)  # rows 2..6 only
        np.testing.assert_allclose(G[2:7], twin[2:7], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(G[:2], (Xr @ Xc.T)[:2], rtol=0, atol=0)  # untouched


def test_kernel_matmat_part_matches_twin():
    from spectra._numba.kernels import kernel_matmat_part

    g = np.random.default_rng(6)
    cases = ((37, 3, 2, 5, 7, 3, np.float64), (64, 6, 1, 8, 16, 1, np.float64),
             (50, 65, 3, 64, 12, 2, np.float32))
    for N, d, k, rows, chunk, nt, dtype in cases:
        P = g.standard_normal((N, d)).astype(dtype)
        P64 = P.astype(np.float64)
        sq64 = (P64**2).sum(1)
        Vt = g.standard_normal((k, N)).astype(dtype)
        for kind, a in ((0, 0.2), (1, 0.3), (3, 0.6), (4, 0.1)):
            prm = np.array([a, 1.0, 1.0, 0.0, 1 / 3, 1e-4], dtype=dtype)
            acc = np.full((nt, k, N), np.nan, dtype=dtype)
            for t in range(nt):  # every thread's share, one after the other
                kernel_matmat_part(P, sq64.astype(dtype), Vt, acc[t], t, nt, kind, prm, 2,
                                   rows, chunk)
            G = P64 @ P64.T
            if kind != 4:
                np.fill_diagonal(G, sq64)  # a point's distance to itself is exactly 0
            twin = _kernel_twin(G, sq64, sq64, kind, a, 1.0, 2) @ Vt.T.astype(np.float64)
            tol = pick(dtype, float64=1e-12, float32=2e-5)
            assert np.abs(acc.sum(axis=0).T - twin).max() <= tol * np.abs(twin).max()


def test_lanczos_row_kernels_match_numpy_twins():
    # rows of (p, n) blocks, as CPU torch Lanczos stores them; c = 0 and c > 0 locked rows
    from spectra._numba.lanczos_rows import CHUNK, step_dots, step_update

    g = np.random.default_rng(7)
    for n, p, c, dtype in ((1, 1, 0, np.float64), (CHUNK + 3, 3, 2, np.float64),
                           (3 * CHUNK - 1, 4, 5, np.float32), (100, 2, 0, np.float32)):
        W, Q, P = (g.standard_normal((p, n)).astype(dtype) for _ in range(3))
        U = g.standard_normal((c, n)).astype(dtype)
        tol = pick(dtype, float64=1e-12, float32=1e-5)
        a, C = step_dots(W, Q, U)
        W64, Q64, P64, U64 = (x.astype(np.float64) for x in (W, Q, P, U))
        np.testing.assert_allclose(a, np.einsum("ji,ji->j", Q64, W64), rtol=1e-12)
        np.testing.assert_allclose(C, U64 @ W64.T, rtol=1e-12, atol=1e-12)
        inv, b = 0.25, g.standard_normal(p)
        twin = (inv * W64 - a[:, None] * Q64 - b[:, None] * P64 - C.T @ U64).astype(dtype)
        ss = step_update(W, inv, Q, a, P, b, U, C)
        np.testing.assert_allclose(W, twin, rtol=tol, atol=tol)
        np.testing.assert_allclose(ss, (W.astype(np.float64) ** 2).sum(axis=1), rtol=1e-12)
