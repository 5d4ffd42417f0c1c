"""Free decompression: impalpable.freedecomp against freealg (PyPI) on the same matrices.

Run: ``.venv/bin/python benchmarks/bench_freedecomp.py [--quick]``. Writes a Markdown
section to stdout; ``run(quick=False) -> str`` returns it. ``--at-scale`` runs the "at
scale" section instead (``benchmarks/fd_at_scale.py``: operator blocks from kernels and
model curvature).

Notes
-----
* freealg 0.12.x calls ``numpy.trapz``, removed in numpy 2.4: this script sets the shim
  ``numpy.trapz = numpy.trapezoid`` before importing it.
* BLAS is limited to one thread (``OPENBLAS_NUM_THREADS=1``, set before numpy is
  imported): on a shared 2-core machine threaded OpenBLAS inside small eigensolves was
  10-100x slower from oversubscription. Timings on a shared machine are noisy.
* truth = ``eigvalsh`` of the full matrix; W1 = integral |F_est - F_true| dx. freealg's
  densities are clipped at zero and renormalised before W1 (favourable to freealg).
* Two-bulk case: population 1 and 6 interleaved along the diagonal, so the leading
  block holds exactly half of each (a random row subset would add a binomial
  composition error of ~2% in the weights, i.e. ~0.1 in W1, to every method).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from freedecomp import decompress, laws  # noqa: E402
from freedecomp.result import measure_from_grid  # noqa: E402
from spectra.testing import matrix_from_eigenvalues, wasserstein1  # noqa: E402


def _wishart(N, c, rng):
    m = round(N / c)
    return laws.wishart(N, m, rng) / m, m


def _two_bulk(N, c, rng):
    m = round(N / c)
    d = np.sqrt(np.where(np.arange(N) % 2 == 0, 1.0, 6.0))
    return d[:, None] * laws.wishart(N, m, rng) * d[None, :] / m, m


def _cases(quick):
    s = 4 if quick else 1
    rng = np.random.default_rng(2026)
    out = []
    A, m = _wishart(4096 // s, 0.5, rng)
    out.append(("Wishart N=4096 from n=512, c=0.5", A, 512 // s, None, None, "<= 0.0015"))
    A, m = _wishart(8192 // s, 0.5, rng)
    out.append(("Wishart N=8192 from n=512, c=0.5", A, 512 // s, None, None, "<= 0.0025"))
    A = laws.Wigner(2.0).sample_matrix(4096 // s, rng)
    out.append(("GOE N=4096 from n=512", A, 512 // s, None, None, "<= 0.0045"))
    A, m = _two_bulk(4096 // s, 0.1, rng)
    out.append(("two-bulk covariance N=4096 from n=512, c=0.1", A, 512 // s, m, None, "<= 0.03"))
    if not quick:
        law = laws.MarchenkoPastur(512 / 65536)
        B = law.sample_matrix(512, rng)
        out.append(("Wishart N=32768 from n=512 (alpha=64, truth: MP law c=0.5)", B, 512, None,
                    (32768, laws.MarchenkoPastur(0.5)), "report"))
    # outside the model families / not free compressions
    N = 4096 // s
    u = np.sort(rng.uniform(-1, 1, N))
    out.append(("uniform law N=4096 from n=512", matrix_from_eigenvalues(u, rng), 512 // s,
                None, None, "-"))
    tb = np.concatenate([rng.uniform(-2, -1, N // 2), rng.uniform(1, 2, N - N // 2)])
    out.append(("two-bump law N=4096 from n=512", matrix_from_eigenvalues(tb, rng), 512 // s,
                None, None, "-"))
    K = _digits_kernel(rng)
    if K is not None:
        out.append((f"RBF kernel, sklearn digits N={K.shape[0]} from n=200", K, 200, None, None,
                    "-"))
    return out


def _digits_kernel(rng):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    X = load_digits().data
    X = X[rng.permutation(X.shape[0])]
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    sq = np.sum(X**2, 1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0)
    K = np.exp(-D / (2 * np.median(D)))
    return 0.5 * (K + K.T)


def _ours(A, n, N, columns, repeats=3):
    """Our decompression, timed warm: best of ``repeats`` (wall and CPU seconds)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        r = decompress(A[:n, :n], N, rng=0, columns=columns)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return r, min(wall), min(cpu)


def _freealg(eigs, N, x, columns):
    import numpy

    numpy.trapz = numpy.trapezoid  # noqa: NPY201 - numpy-2.4 shim for freealg
    import freealg

    res = {}
    t = time.perf_counter()
    try:
        if columns is None:
            ff = freealg.FreeForm(eigs)
            ff.fit(method="jacobi", K=20, alpha=0.5, beta=0.5, continuation="pade")
            out = ff.decompress(N, x=x)
            rho = out[0] if isinstance(out, tuple) else out
            res["FreeForm"] = (np.asarray(rho, float), time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001 - we report freealg's crash
        res["FreeForm"] = (f"crash: {type(exc).__name__}", time.perf_counter() - t)
    t = time.perf_counter()
    try:
        af = freealg.AlgebraicForm(eigs)
        af.fit(deg_m=3, deg_z=2)
        out = af.decompress(N, x=x, kind="free" if columns is None else "deformed")
        rho = out[0] if isinstance(out, tuple) else out
        res["AlgebraicForm(3,2)"] = (np.asarray(rho, float), time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001
        res["AlgebraicForm(3,2)"] = (f"crash: {type(exc).__name__}", time.perf_counter() - t)
    return res


def _w1_grid(x, rho, truth):
    rho = np.nan_to_num(np.maximum(rho, 0.0))
    if rho.size != x.size or not np.trapezoid(rho, x) > 0:
        return float("nan")
    nodes, w = measure_from_grid(x, rho, [])
    return wasserstein1(nodes, truth, weights=w)


def _fresh_process_time(block, N, columns, repeats=3):
    """Best-of-``repeats`` time of a fresh interpreter: import + Numba cache load + one call."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "block.npy"
        np.save(path, block)
        code = (f"import time; t=time.perf_counter(); import numpy as np; from freedecomp import "
                f"decompress; B=np.load({str(path)!r}); decompress(B, {N}, rng=0, "
                f"columns={columns}); print(time.perf_counter()-t)")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[1])
        times = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 cwd=root, env=env, check=True)
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def run(quick: bool = False) -> str:
    """Run the benchmark and return a Markdown section."""
    lines = ["## Free decompression (freedecomp vs freealg)", "",
             "Times: best of 3; warm = wall (CPU) seconds of one `decompress` call in this "
             "process; fresh = a new interpreter importing freedecomp, loading the Numba "
             "cache and decompressing (target < 1 s warm, < 3 s fresh). Machine load "
             f"average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.", "",
             "| case | target | ours W1 | ours model | warm s (CPU) | fresh s | "
             "raw sample W1 | freealg FreeForm W1 | freealg Algebraic(3,2) W1 | "
             "freealg time (s) | our diagnostics |", "|" + "---|" * 11]
    _ours(laws.MarchenkoPastur(0.1).sample_matrix(128, 0), 64, 256, None, 1)  # JIT warm-up
    for name, A, n, columns, lawcase, target in _cases(quick):
        if lawcase is None:
            N = A.shape[0]
            truth = np.linalg.eigvalsh(A)
        else:
            N, law = lawcase
            truth = law.to_density()
        r, t_ours, c_ours = _ours(A, n, N, columns)
        t_fresh = _fresh_process_time(A[:n, :n], N, columns)
        w_ours = wasserstein1(r.density, truth)
        eigs = np.linalg.eigvalsh(A[:n, :n])
        w_raw = wasserstein1(eigs, truth)
        fa = _freealg(eigs, N, r.x, columns)
        fw = {k: (v[0] if isinstance(v[0], str) else f"{_w1_grid(r.x, v[0], truth):.4f}")
              for k, v in fa.items()}
        ft = "/".join(f"{v[1]:.2f}" for v in fa.values())
        d = r.diagnostics
        diag = "; ".join(
            [f"decompressible={d.get('decompressible')}"]
            + ([f"free_compression={d['free_compression']}"] if "free_compression" in d else [])
            + [w[:90] for w in d.get("warnings", [])[:2]])
        lines.append(f"| {name} | {target} | {w_ours:.4f} | {d.get('model')} | "
                     f"{t_ours:.2f} ({c_ours:.2f}) | {t_fresh:.2f} | "
                     f"{w_raw:.3f} | {fw.get('FreeForm', '-')} | "
                     f"{fw.get('AlgebraicForm(3,2)', '-')} | {ft} | {diag} |")
    lines += [""]
    return "\n".join(lines)


if __name__ == "__main__":
    if "--at-scale" in sys.argv:  # the "at scale" section: benchmarks/fd_at_scale.py
        from fd_at_scale import run as run_at_scale

        print(run_at_scale(quick="--quick" in sys.argv))
    else:
        print(run(quick="--quick" in sys.argv))
