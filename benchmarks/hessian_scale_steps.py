"""Probe draws and Lanczos steps on a trivial diagonal torch float32 operator, one thread.

The estimator's own work at model scale (issue 14, items 1 and 2), without a model:

* one probe drawn by :func:`spectra.probes.draw` for a CPU torch float32 operator from an
  integer seed (Gaussian, sphere, Rademacher), per probe, best of three;
* one step of :func:`spectra.lanczos` outside the products (``d[:, None] * V``, timed
  and subtracted), per step, best of two runs of ``k`` steps.

Imports only :func:`spectra.probes.draw` and :func:`spectra.lanczos`, so one command
compares trees: ``PYTHONPATH=<tree> python benchmarks/hessian_scale_steps.py``.
"""

from __future__ import annotations

import argparse
import time

import torch

import spectra
from spectra.probes import as_rng, draw


def probe_times(n: int) -> list[str]:
    like, out = torch.zeros(1), torch.empty(4, n)
    rows = []
    for kind in ("gaussian", "sphere", "rademacher"):
        draw(kind, n, 1, like=like, rng=0, out=out[:1])
        best = float("inf")
        for r in range(3):
            g = as_rng(r)
            t0 = time.perf_counter()
            draw(kind, n, 4, like=like, rng=g, out=out)
            best = min(best, (time.perf_counter() - t0) / 4)
        rows.append(f"probe {kind}, n = {n}: {1e3 * best:.1f} ms per probe")
    return rows


def lanczos_step(n: int, p: int, k: int, reorth: str) -> str:
    d = torch.linspace(1.0, 2.0, n, dtype=torch.float32)
    spent = [0.0]

    def mm(V: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = d[:, None] * V
        spent[0] += time.perf_counter() - t0
        return out

    op = spectra.Operator.from_matvec(lambda v: d * v, (n, n), dtype=torch.float32,
                                      symmetric=True, matmat=mm)
    v0 = torch.randn(p, n, generator=torch.Generator().manual_seed(0)).T
    spectra.lanczos(op, 2, v0=v0, reorth=reorth)  # warm-up (imports, compilation)
    best = float("inf")
    for _ in range(2):
        spent[0] = 0.0
        t0 = time.perf_counter()
        spectra.lanczos(op, k, v0=v0, reorth=reorth)
        best = min(best, (time.perf_counter() - t0 - spent[0]) / k)
    return (f"lanczos n = {n}, p = {p}, {k} steps, reorth={reorth}: {1e3 * best:.1f} ms "
            "per step outside the products")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=11_180_000, help="probe length")
    parser.add_argument("--lanczos-n", type=int, default=2_800_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"tree {spectra.__file__.rsplit('/spectra/', 1)[0]}; load "
          f"{open('/proc/loadavg').read().strip()}")
    lines = probe_times(args.n)
    m = args.lanczos_n
    lines += [lanczos_step(m, 4, 10, "none"), lanczos_step(m, 1, 10, "full"),
              lanczos_step(4 * m, 1, 6, "none")]
    print("\n".join(lines))
