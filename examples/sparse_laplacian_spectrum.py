"""Spectrum of a 2-D Laplacian from products alone, checked against its closed form.

The 5-point Dirichlet Laplacian on an m x (m + 1) grid has eigenvalues
``4 - 2 cos(i pi / (m + 1)) - 2 cos(j pi / (m + 2))``, all distinct (a square grid
has double eigenvalues, which no single-vector Krylov method, ARPACK's included, is
guaranteed to count). We estimate its density by
stochastic Lanczos quadrature, its top eigenvalues by thick-restart Lanczos, its trace
by XTrace and its log-determinant by SLQ, and compare each with the exact value.

Run ``python examples/sparse_laplacian_spectrum.py [--small] [--out DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import spectra
from spectra.testing import wasserstein1


def _path(m: int) -> tuple[sp.dia_matrix, np.ndarray]:
    off = -np.ones(m - 1)
    t = 2.0 - 2.0 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    return sp.diags([2.0 * np.ones(m), off, off], [0, 1, -1]), t


def laplacian(m: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The m x (m + 1) grid Laplacian and its exact eigenvalues (ascending)."""
    (T1, t1), (T2, t2) = _path(m), _path(m + 1)
    A = sp.kron(T1, sp.identity(m + 1)) + sp.kron(sp.identity(m), T2)
    return A.tocsr(), np.sort((t1[:, None] + t2[None, :]).ravel())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a 60 x 61 grid (for the tests)")
    parser.add_argument("--out", type=Path, default=Path("out/examples"))
    args = parser.parse_args(argv)
    m = 60 if args.small else 200
    A, lam = laplacian(m)
    den = spectra.density(A, num_probes=10, num_steps=60, rng=0)
    top = spectra.eigsh(A, k=3, which="LA", tol=1e-9, rng=0)
    tr = spectra.trace(A, 100, rng=0)
    shifted = A + 0.1 * sp.identity(A.shape[0], format="csr")
    ld = spectra.logdet(shifted, num_probes=10, num_steps=40, rng=0)
    result = {
        "w1": wasserstein1(den, lam),
        "top": top.eigenvalues,
        "trace_error": abs(tr.value - lam.sum()),
        "logdet_error": abs(ld.value - np.log(lam + 0.1).sum()),
    }
    # The claims this example makes, checked.
    assert result["w1"] < 0.02 * (lam[-1] - lam[0]), result["w1"]
    assert np.allclose(top.eigenvalues, lam[::-1][:3], rtol=1e-8), top.eigenvalues
    assert result["trace_error"] <= 4 * tr.stderr + 1e-9 * lam.sum()
    assert result["logdet_error"] <= 4 * ld.stderr

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150, layout="constrained")
    spectra.plot.density(den, ax, reference=lam, bins=80,
                         title=f"2-D Laplacian, {m}x{m + 1} grid (n = {A.shape[0]:,})")
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "sparse_laplacian_density.png")
    plt.close(fig)
    print(f"W1 to the exact spectrum: {result['w1']:.4f}; top eigenvalues {top.eigenvalues}; "
          f"trace error {result['trace_error']:.3g} (stderr {tr.stderr:.3g}); "
          f"logdet error {result['logdet_error']:.3g} (stderr {ld.stderr:.3g})")
    return result


if __name__ == "__main__":
    main()
