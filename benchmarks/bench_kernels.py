"""Benchmark: RBF kernel products ``K V`` without forming ``K``, side by side.

Points ``X`` (``N x 64``, standard normal), ``K_ij = exp(-|x_i - x_j|^2 / (2 h^2))``
with ``h = 8``, one vector (``k = 1``) and a block of ten (``k = 10``), float64 and
float32. Methods, all in this process:

* **spectra** -- ``spectra.kernel_operator(X) @ V``: one fused Numba pass per thread
  (4 x 4 register-blocked inner products, a vectorised exp, symmetric: each
  off-diagonal entry is evaluated once).
* **dense numpy** -- form ``K`` (``|x|^2 + |y|^2 - 2 X X^T``, ``np.exp``) then ``K @ V``;
  only where ``K`` takes at most 2 GB.
* **blocked numpy** -- what a user writes by hand: rows of ``K`` a block at a time
  (a GEMM for ``X_b X^T``, the norms, ``np.exp``), then ``K_b @ V``; blocks of
  ``2^25 / N`` rows (256 MB of float64 per temporary).
* **torch CPU** -- the same blocks with ``torch.cdist`` and ``torch.exp`` (torch's own
  threads), and **spectra (torch input)**: a CPU tensor shares the Numba pass (zero-copy).
* **pykeops CPU** -- ``LazyTensor`` reduction ``(-g * sum((x_i - x_j)^2)).exp() @ V``;
  its one-off formula compilation is done before timing. Skipped where the time
  extrapolated from a smaller ``N`` (``~N^2``) exceeds ``--keops-budget`` seconds.

Wall time is the best of ``--reps`` runs. The GEMM rate is measured here (a square
``4000 x 4000`` matmul, best of 3). The *nominal* rate of a product counts
``N^2 (2d + 5 + 2k)`` flops: ``2d`` for the inner products, 4 for norms and scaling,
one for the exp (it costs about 20 in our vectorised exp, so this count is
conservative) and ``2k`` for the multiplication, over all ``N^2`` entries; spectra
evaluates only half of them (symmetry), so its nominal rate can exceed the GEMM rate.
The machine's load average (``/proc/loadavg``) is printed with each row: on a shared
machine, wall times of multi-threaded code inflate with it.

Also: the end-to-end spectrum of an RBF kernel (``examples/kernel_spectrum.py``): SLQ
and free decompression against ``eigvalsh``; and the cold first call (Numba
compilation, empty cache) in a fresh process.

Run: ``python benchmarks/bench_kernels.py [--quick] [--sizes 10000,30000,100000]``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
D, H = 64, 8.0
DENSE_BYTES = 2 * 1024**3


def load() -> str:
    """The 1-minute load average of the machine."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def best(fn, reps: int) -> tuple[float, float]:
    """Best wall time and the CPU time of that run (all threads of this process)."""
    out = (math.inf, math.inf)
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        out = min(out, (time.perf_counter() - t, time.process_time() - c))
    return out


def gemm_rate(dtype) -> float:
    """GFLOP/s of a square 4000 x 4000 matmul with numpy's BLAS (best of 3)."""
    A = np.random.default_rng(0).standard_normal((4000, 4000)).astype(dtype)
    C = np.empty_like(A)
    np.dot(A, A, out=C)
    t, _ = best(lambda: np.dot(A, A, out=C), 3)
    return 2 * 4000**3 / t / 1e9


def flops(N: int, k: int) -> float:
    return N * N * (2 * D + 5 + 2 * k)


# ----------------------------------------------------------------------------- methods
def dense_numpy(X, V, gamma):
    sq = np.einsum("ij,ij->i", X, X)
    K = np.exp(-gamma * (sq[:, None] + sq[None, :] - 2 * (X @ X.T)))
    return K @ V


def blocked_numpy(X, V, gamma):
    N = X.shape[0]
    b = max(64, 2**25 // N)
    sq = np.einsum("ij,ij->i", X, X)
    out = np.empty((N, V.shape[1]), dtype=X.dtype)
    for r0 in range(0, N, b):
        Kb = np.exp(-gamma * (sq[r0:r0 + b, None] + sq[None, :] - 2 * (X[r0:r0 + b] @ X.T)))
        out[r0:r0 + b] = Kb @ V
    return out


def blocked_torch(X, V, gamma):
    import torch

    N = X.shape[0]
    b = max(64, 2**25 // N)
    out = torch.empty((N, V.shape[1]), dtype=X.dtype)
    for r0 in range(0, N, b):
        out[r0:r0 + b] = torch.exp(-gamma * torch.cdist(X[r0:r0 + b], X) ** 2) @ V
    return out


def keops_product(X, V, gamma):
    from pykeops.numpy import LazyTensor

    xi, xj = LazyTensor(X[:, None, :]), LazyTensor(X[None, :, :])
    return (-gamma * ((xi - xj) ** 2).sum(-1)).exp() @ V


def have_keops() -> bool:
    try:
        import pykeops  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- sections
def methods(X, V, K, Kt, gamma: float, dense: bool, keops: bool) -> list[tuple]:
    """``(name, callable)`` of every method for one problem (``None``: skipped)."""
    import torch

    Xt, Vt = torch.as_tensor(X), torch.as_tensor(V)
    runs = [("spectra", lambda: K @ V), ("blocked numpy", lambda: blocked_numpy(X, V, gamma))]
    if dense:
        runs.append(("dense numpy", lambda: dense_numpy(X, V, gamma)))
    runs += [("torch CPU (cdist blocks)", lambda: blocked_torch(Xt, Vt, gamma)),
             ("spectra (torch input)", lambda: Kt @ Vt)]
    if keops:
        keops_product(X[:500], V[:500], gamma)  # compiles the formula outside the timing
        runs.append(("pykeops CPU", lambda: keops_product(X, V, gamma)))
    return runs


def measure(runs: list[tuple], reps: int, float64: bool) -> dict[str, tuple]:
    """Time each method (its first, checked run counts as one of the ``reps``)."""
    ref, rows = None, {}
    for name, fn in runs:
        ld = load()
        box = []
        first = best(lambda fn=fn, box=box: box.append(fn()), 1)
        out = np.asarray(box[0], dtype=np.float64)
        ref = out if ref is None else ref
        err = np.abs(out - ref).max() / np.abs(ref).max()
        assert err < (1e-10 if float64 else 2e-3), (name, err)
        rows[name] = (*min(first, best(fn, reps - 1)), ld)
    return rows


def products(sizes, dtypes, ks, reps: int, keops_budget: float) -> list[str]:
    import torch

    import spectra

    gamma = 1.0 / (2 * H * H)
    rates = {dt: gemm_rate(dt) for dt in dtypes}
    keops = have_keops()
    lines = [
        "## RBF kernel products `K V` (d = 64, never forming K)",
        "",
        "GEMM rate of this machine (numpy BLAS, 4000^2 matmul, both cores): " + ", ".join(
            f"{np.dtype(dt).name} {r:.1f} GFLOP/s" for dt, r in rates.items()) + ". "
        "Nominal GFLOP/s count `N^2 (2d + 5 + 2k)`; *vs GEMM* divides by the GEMM rate; "
        "spectra evaluates each off-diagonal entry once (symmetry), half that count, so its "
        "nominal rate can exceed the GEMM rate and the rate of the work it does is half the "
        "nominal. *speed-up* is the blocked-numpy time over each method's. Wall seconds, "
        "best of "
        f"{reps} (one run at N > 30,000); *load* is the machine's 1-minute load average "
        "when the method started (2 cores).",
        "",
        "| N | dtype | k | method | wall s | CPU s | nominal GFLOP/s | vs GEMM | speed-up "
        "| load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keops_time: dict[tuple, tuple[int, float]] = {}
    for N in sizes:
        for dt in dtypes:
            g = np.random.default_rng(0)
            X = g.standard_normal((N, D)).astype(dt)
            K = spectra.kernel_operator(X, "rbf", bandwidth=H)
            Kt = spectra.kernel_operator(torch.as_tensor(X), "rbf", bandwidth=H)
            for k in ks:
                V = g.standard_normal((N, k)).astype(dt)
                prev = keops_time.get((dt, k))
                est = prev[1] * (N / prev[0]) ** 2 if prev else 0.0
                runs = methods(X, V, K, Kt, gamma, N * N * np.dtype(dt).itemsize <= DENSE_BYTES,
                               keops and est <= keops_budget)
                rows = measure(runs, reps if N <= 30000 else 1, dt == np.float64)
                if "pykeops CPU" in rows:
                    keops_time[(dt, k)] = (N, rows["pykeops CPU"][0])
                base = rows["blocked numpy"][0]
                for name, (wall, cpu, ld) in rows.items():
                    rate = flops(N, k) / wall / 1e9
                    lines.append(f"| {N:,} | {np.dtype(dt).name} | {k} | {name} | {wall:.3f} | "
                                 f"{cpu:.2f} | {rate:.1f} | {rate / rates[dt]:.0%} | "
                                 f"{base / wall:.2f}x | {ld} |")
                if keops and est > keops_budget:
                    lines.append(f"| {N:,} | {np.dtype(dt).name} | {k} | pykeops CPU | skipped "
                                 f"(extrapolated {est:.0f} s from N = {prev[0]:,}) | | | | | |")
                print("\n".join(lines[-len(rows) - (keops and est > keops_budget):]),
                      flush=True)
    if not keops:
        lines += ["", "pykeops is not installed (`pip install pykeops`): no pykeops rows."]
    return lines


def end_to_end(N: int) -> list[str]:
    sys.path.insert(0, str(HERE.parent / "examples"))
    import kernel_spectrum

    with tempfile.TemporaryDirectory() as tmp:
        r = kernel_spectrum.main(["--out", tmp, "--points", str(N)])
    s = r["seconds"]
    return [
        "",
        f"## End to end: the spectrum of an RBF kernel, N = {r['N']:,}",
        "",
        "`examples/kernel_spectrum.py`: Gaussian mixture (10 clusters, d = 8), bandwidth "
        f"{r['bandwidth']:.3f} by the median heuristic. Exact: `eigvalsh` of the formed "
        "matrix. W1 is the Wasserstein-1 distance to the exact eigenvalues (their mean, "
        f"`tr K / N`, is {r['mean']:.3f}).",
        "",
        "| method | seconds | W1 | notes |",
        "|---|---|---|---|",
        f"| dense `eigvalsh` (form K, then eigenvalues) | {s['dense']:.1f} | 0 | reference |",
        f"| SLQ on the operator, 10 probes x 60 steps | {s['slq']:.1f} | {r['w1_slq']:.2e} | "
        f"{r['slq_products']} products, K never formed |",
        f"| free decompression from n = {r['n']} (`K.block`) | {s['freedecomp']:.1f} | "
        f"{r['w1_freedecomp']:.2e} | model {r['model']}; decompressed mean "
        f"{r['mean_freedecomp']:.3f} vs {r['mean']:.3f} |",
        f"| Nystrom: one n-block's eigenvalues x N/n | - | {r['w1_nystrom']:.2e} | "
        f"top eigenvalue {r['top_nystrom']:.1f} vs exact {r['top']:.1f} |",
    ]


def cold_start() -> list[str]:
    code = ("import time, numpy as np\nt0 = time.perf_counter()\nimport spectra\n"
            "for dt in ('float64', 'float32'):\n"
            "    X = np.random.default_rng(0).standard_normal((2000, 64)).astype(dt)\n"
            "    K = spectra.kernel_operator(X, 'rbf', bandwidth=8.0)\n"
            "    t = time.perf_counter(); K @ np.ones(2000, dt)\n"
            "    print(dt, round(time.perf_counter() - t, 2))\n")
    lines = ["", "## First call (Numba compilation) in a fresh process", "",
             "`K @ v` at N = 2000 right after `import spectra`; *cold*: empty Numba cache "
             "(`NUMBA_CACHE_DIR` a new directory), *warm*: the cache written by the cold run.",
             "", "| cache | float64 first product s | float32 first product s | load |",
             "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            ld = load()
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, timeout=600, check=True).stdout.split()
            lines.append(f"| {label} | {out[1]} | {out[3]} | {ld} |")
    return lines


def run(quick: bool = False) -> str:
    """Run every section at the default sizes (``quick``: small ones); Markdown."""
    return main(["--quick"] if quick else [])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N in {2000, 5000}, small e2e")
    parser.add_argument("--sizes", type=str, default=None, help="comma-separated N")
    parser.add_argument("--dtypes", type=str, default="float64,float32")
    parser.add_argument("--ks", type=str, default="1,10")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keops-budget", type=float, default=120.0,
                        help="skip pykeops where its extrapolated time exceeds this (s)")
    parser.add_argument("--e2e", type=int, default=None, help="N of the end-to-end run "
                        "(8000; 1500 with --quick; 0 to skip)")
    parser.add_argument("--no-cold", action="store_true", help="skip the compile timing")
    args = parser.parse_args(argv)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes else
             [2000, 5000] if args.quick else [10000, 30000, 100000])
    dtypes = [np.dtype(s).type for s in args.dtypes.split(",")]
    ks = [int(s) for s in args.ks.split(",")]
    e2e = args.e2e if args.e2e is not None else (1500 if args.quick else 8000)
    lines = products(sizes, dtypes, ks, args.reps, args.keops_budget)
    if e2e:
        lines += end_to_end(e2e)
    if not args.no_cold:
        lines += cold_start()
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
