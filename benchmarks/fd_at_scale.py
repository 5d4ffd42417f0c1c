"""Free decompression at scale: operator blocks from kernels and model curvature.

Placeholder while the benchmark is written; see ``truth`` below.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "benchmarks" / ".cache"

import spectra  # noqa: E402


def gaussian_mixture(N: int, d: int = 8, clusters: int = 10, seed: int = 0) -> np.ndarray:
    """``N`` points of a Gaussian mixture (the data of ``examples/kernel_spectrum.py``)."""
    g = np.random.default_rng(seed)
    centres = 2.0 * g.standard_normal((clusters, d))
    widths = g.uniform(0.5, 1.5, clusters)
    label = g.integers(0, clusters, N)
    return centres[label] + widths[label, None] * g.standard_normal((N, d))


def kernel_truth(N: int) -> tuple[np.ndarray, float]:
    """Exact eigenvalues of the RBF kernel of ``gaussian_mixture(N)`` (cached), and seconds."""
    path = CACHE / f"rbf_mixture_{N}.npz"
    if path.exists():
        z = np.load(path)
        return z["lam"], float(z["seconds"])
    K = spectra.kernel_operator(gaussian_mixture(N), "rbf")
    t0 = time.perf_counter()
    A = K.block(np.arange(N), np.arange(N))
    lam = np.linalg.eigvalsh(A, UPLO="L")
    sec = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, lam=lam, seconds=sec, bandwidth=K.bandwidth)
    return lam, sec


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "truth":
    for n_ in map(int, sys.argv[2:]):
        lam_, s_ = kernel_truth(n_)
        print(n_, s_, lam_[-3:], flush=True)
