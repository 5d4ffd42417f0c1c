"""The ``impalpable`` command line (application layer).

This is the one module of :mod:`spectra` that may import :mod:`freedecomp` or
:mod:`hessian`, and only lazily inside a subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["demo_matrix", "main", "run_demo"]


def demo_matrix(n: int = 3000, rng: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """A built-in symmetric test matrix with a known spectrum.

    A two-bulk spectrum (a wide bulk on ``[0, 1]`` and a narrow one around ``2.5``)
    plus five separated outliers, rotated by a Haar orthogonal matrix.

    Returns
    -------
    A : ndarray, shape ``(n, n)``
    eigenvalues : ndarray, shape ``(n,)``, ascending
    """
    from .testing import matrix_from_eigenvalues

    g = np.random.default_rng(rng)
    m = n - 5
    bulk1 = g.beta(2.0, 3.0, size=int(0.7 * m))
    bulk2 = 2.5 + 0.15 * g.standard_normal(m - bulk1.size)
    outliers = np.array([4.0, 4.5, 5.0, 6.0, 8.0])
    lam = np.sort(np.concatenate([bulk1, bulk2, outliers]))
    return matrix_from_eigenvalues(lam, rng=g), lam


def run_demo(out: Path, n: int = 3000, seed: int = 0, quiet: bool = False) -> dict:
    """Run the main job on the built-in matrix and write its figures and plot.

    Returns
    -------
    dict
        The figures written to ``out/demo.json``.
    """
    import spectra
    from spectra.testing import wasserstein1

    out.mkdir(parents=True, exist_ok=True)
    A, lam = demo_matrix(n, rng=seed)
    op = spectra.as_operator(A)
    t0 = time.perf_counter()
    den = spectra.density(op, num_probes=10, num_steps=60, rng=seed)
    t_den = time.perf_counter() - t0
    t0 = time.perf_counter()
    eig = spectra.eigsh(op, k=5, which="LA", tol=1e-8, rng=seed)
    t_eig = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = spectra.trace(op, 100, method="xtrace", rng=seed)
    t_tr = time.perf_counter() - t0
    top = lam[::-1][:5]
    figures = {
        "n": n,
        "density": {"products": den.num_matvecs, "w1_to_truth": wasserstein1(den, lam),
                    "seconds": t_den},
        "top_eigenvalues": {"estimate": eig.eigenvalues.tolist(), "truth": top.tolist(),
                            "max_abs_error": float(np.max(np.abs(eig.eigenvalues - top))),
                            "products": eig.num_matvecs, "converged": eig.converged,
                            "seconds": t_eig},
        "trace": {"estimate": float(tr.value), "stderr": float(tr.stderr),
                  "truth": float(lam.sum()), "products": tr.num_matvecs, "seconds": t_tr},
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import density as plot_density

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=150, layout="constrained")
    plot_density(den, ax, reference=lam, bins=120,
                 title=f"Spectral density of the built-in {n}x{n} matrix")
    ax.vlines(eig.eigenvalues, 0, ax.get_ylim()[1] * 0.25, color="#2a9d8f", linewidth=1.4,
              label="top-5 eigenvalues (eigsh)")
    ax.legend(frameon=False, fontsize="small")
    png = out / "demo_density.png"
    fig.savefig(png)
    plt.close(fig)
    (out / "demo.json").write_text(json.dumps(figures, indent=2))
    if not quiet:
        print(f"impalpable demo: {n} x {n} symmetric matrix with a known spectrum\n")
        print(f"{'quantity':<22}{'estimate':>14}{'truth':>14}{'products':>10}{'seconds':>9}")
        print(f"{'density (W1 to truth)':<22}{figures['density']['w1_to_truth']:>14.4g}"
              f"{'':>14}{den.num_matvecs:>10}{t_den:>9.2f}")
        for i in range(5):
            cost = f"{eig.num_matvecs:>10}{t_eig:>9.2f}" if i == 0 else ""
            print(f"{'lambda_' + str(i + 1):<22}{eig.eigenvalues[i]:>14.10f}{top[i]:>14.10f}{cost}")
        print(f"{'trace (xtrace)':<22}{tr.value:>14.4f}{lam.sum():>14.4f}{tr.num_matvecs:>10}"
              f"{t_tr:>9.2f}   (stderr {tr.stderr:.3g})")
        print(f"\nwrote {png}\nwrote {out / 'demo.json'}")
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``impalpable`` console script."""
    parser = argparse.ArgumentParser(prog="impalpable", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the main job on a built-in example")
    p_demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p_demo.add_argument("--size", type=int, default=3000, help="matrix size (default 3000)")
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.size < 50:
            print("impalpable: error: --size must be at least 50", file=sys.stderr)
            return 2
        run_demo(args.out, n=args.size, seed=args.seed, quiet=args.quiet)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
