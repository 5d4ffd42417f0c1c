"""Textbook accuracy of free decompression from 4 blocks (issue 19, item 8).

Three laws, 5 seeds each, ``decompress`` on a stack of 4 blocks against the exact
spectrum:

* ``mp``: Marchenko-Pastur, N = 8192 from n = 512 (Wishart blocks of ratio 1/32, whose
  decompression is the law of ratio 1/2); target W1 <= 0.0025 on 5 of 5 seeds;
* ``two-bulk``: an orthogonally invariant matrix whose spectrum is two separated
  semicircles (centres -3 and 3, radius 1), N = 4096 from n = 512 (alpha = 8); target:
  below half of "none" (the block as it is) and below freealg's FreeForm;
* ``decades``: an invariant PSD matrix with a log-normal spectrum spanning about five
  decades (log10 x ~ N(-2, 0.9)), N = 8192 from n = 512 (alpha = 16); target: below
  freealg's AlgebraicForm.

The invariant blocks are Haar compressions of the full spectrum
(``freedecomp.samplers.haar_compress``: exact free compressions in law). freealg
0.12.2 is run as a fair user configures it (FreeForm: Jacobi basis K = 20,
alpha = beta = 0.5, Pade continuation; AlgebraicForm: deg_m = 3, deg_z = 2) on the first
block, each under a time limit, its density clipped at zero and renormalised.

Run: ``python benchmarks/fd_accuracy.py [mp,two-bulk,decades] [--seeds 5] [--first 0]
[--limit 120] [--freealg FreeForm,AlgebraicForm]`` (seeds ``first .. first + seeds - 1``).
Each freealg fit runs in a forked child process killed after the time limit
(``fd_methods``; a SIGALRM cannot stop freealg inside compiled code: AlgebraicForm(3,2)
once ran 733 s on the two-bulk case).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

from freedecomp import FreeDecompressionWarning, decompress, laws
from freedecomp.result import measure_from_grid
from freedecomp.samplers import haar_compress
from spectra.distances import wasserstein1

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fd_methods  # noqa: E402


def _case(name, seed):
    """(block eigenvalue sets (4), N, exact spectrum or law quadrature, blocks or None)."""
    g = np.random.default_rng(seed)
    if name == "mp":
        law = laws.MarchenkoPastur(1 / 32)
        mats = np.stack([law.sample_matrix(512, g) for _ in range(4)])
        d = law.decompressed(16).to_density()
        return [np.linalg.eigvalsh(M) for M in mats], 8192, (d.nodes, d.weights), mats
    if name == "two-bulk":
        N = 4096
        sc = laws.Wigner(1.0).quantiles(N // 2)
        full = np.concatenate([sc - 3.0, sc + 3.0])
    else:
        N = 8192
        full = np.sort(10 ** (-2 + 0.9 * g.standard_normal(N)))
    blocks = [haar_compress(full, 512, g) for _ in range(4)]
    return blocks, N, (full, None), None


def _freealg_fit(eigs, N, x, kind):
    """freealg's decompressed density on ``x`` as a measure (run in a child process)."""
    freealg = fd_methods._freealg()  # with the numpy-2.4 shim
    if kind == "FreeForm":
        f = freealg.FreeForm(eigs)
        f.fit(method="jacobi", K=20, alpha=0.5, beta=0.5, continuation="pade")
    else:
        f = freealg.AlgebraicForm(eigs)
        f.fit(deg_m=3, deg_z=2)
    out = f.decompress(N, x=x)
    rho = np.nan_to_num(np.maximum(np.asarray(out[0] if isinstance(out, tuple) else out,
                                              float), 0.0))
    if not np.trapezoid(rho, x) > 0:
        raise ValueError("no mass on the grid")
    return measure_from_grid(x, rho, [])


def _freealg(eigs, N, x, kind, limit):
    """``(measure or why not, seconds)``: the fit in a child process killed after ``limit``."""
    t = time.perf_counter()
    try:
        m = fd_methods._with_limit(_freealg_fit, (eigs, N, x, kind), limit)
    except fd_methods._Timeout:
        return f"over {limit:.0f} s", time.perf_counter() - t
    except RuntimeError as exc:
        return f"crash: {exc}", time.perf_counter() - t
    return m, time.perf_counter() - t


def run(name, seeds, limit, kinds, first=0):
    for seed in range(first, first + seeds):
        blocks, N, (tn, tw), mats = _case(name, seed)
        sd = float(np.sqrt(np.average((tn - np.average(tn, weights=tw)) ** 2, weights=tw)))

        def w(nodes, weights=None, tn=tn, tw=tw):
            return wasserstein1(nodes, tn, weights, tw)

        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            r = decompress(blocks if name != "mp" else mats, N, rng=seed)
        sec = time.perf_counter() - t
        warned = any(issubclass(c.category, FreeDecompressionWarning) for c in rec)
        d = r.density
        row = {"none": w(blocks[0]), "ours4": w(d.nodes, d.weights)}
        line = (f"{name} seed {seed}: W1 ours(4 blocks) {row['ours4']:.5f} "
                f"(W1/sd {row['ours4'] / sd:.4f}, {r.diagnostics.model}, {sec:.1f} s, "
                f"warned {warned}) none {row['none']:.5f}")
        if kinds:
            x = np.linspace(float(np.min(tn)) - 0.1 * sd, float(np.max(tn)) + 0.1 * sd, 2001)
            for kind in kinds:
                m, s = _freealg(blocks[0], N, x, kind, limit)
                val = f"{w(*m):.5f}" if isinstance(m, tuple) else m
                line += f" | {kind} {val} ({s:.1f} s)"
        print(line, flush=True)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("cases", nargs="?", default="mp,two-bulk,decades")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first", type=int, default=0, help="first seed")
    p.add_argument("--limit", type=float, default=120.0)
    p.add_argument("--freealg", default="FreeForm,AlgebraicForm",
                   help="freealg classes to run ('' for none)")
    a = p.parse_args(argv)
    print(f"load {os.getloadavg()}", flush=True)
    for name in a.cases.split(","):
        kinds = [] if name == "mp" else [k for k in a.freealg.split(",") if k]
        run(name, a.seeds, a.limit, kinds, a.first)


if __name__ == "__main__":
    main(sys.argv[1:])
