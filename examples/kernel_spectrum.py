"""Spectrum of an RBF kernel matrix: SLQ on the implicit operator, free decompression, exact.

``N`` points from a Gaussian mixture (10 clusters in 8 dimensions, generated here) and
the RBF kernel with the median-heuristic bandwidth. The kernel matrix is never formed
for the estimates: stochastic Lanczos quadrature multiplies by the operator
(``spectra.kernel_operator``), and free decompression sees only ``n x n`` principal
blocks of it (``K.block``, the kernel of ``n`` random points). Both are compared with
the exact eigenvalues of the dense matrix (formed here only as the reference), and with
the Nyström estimate: the eigenvalues of one ``n``-point block scaled by ``N/n``,
padded with zeros.

Kernel spectra decay fast (most eigenvalues are near 0, a few are of order ``N``), so
the figure shows the counting function ``#{lambda_i >= lambda}`` on log-log axes (the
large eigenvalues) and the distribution function on a log axis (the bulk near 0).
A principal block of a kernel matrix is the kernel of a subsample, not a free
compression: its top eigenvalues are about ``n/N`` times those of ``K`` (Nyström),
and its law is not the free compression of the law of ``K``; the example prints
and checks how far each estimate lands.

Run ``python examples/kernel_spectrum.py [--small] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import freedecomp
import spectra
from spectra.operators import KernelOperator
from spectra.testing import wasserstein1


def gaussian_mixture(N: int, d: int, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """``N`` points from ``clusters`` Gaussian clusters of different widths in ``R^d``."""
    centres = 2.0 * rng.standard_normal((clusters, d))
    widths = rng.uniform(0.5, 1.5, clusters)
    label = rng.integers(0, clusters, N)
    return centres[label] + widths[label, None] * rng.standard_normal((N, d))


def nystrom_eigenvalues(K: KernelOperator, n: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues of the kernel of ``n`` random points times ``N/n``, padded with zeros."""
    N = K.shape[0]
    idx = np.sort(rng.choice(N, size=n, replace=False))
    top = np.linalg.eigvalsh(K.block(idx, idx)) * (N / n)
    return np.concatenate([np.zeros(N - n), top])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="N = 1500 points (for the tests)")
    parser.add_argument("--out", type=Path, default=Path("out/examples"))
    parser.add_argument("--points", type=int, default=None, help="N (default 8000)")
    parser.add_argument("--subsample", type=int, default=None, help="n (default max(300, N / 8))")
    args = parser.parse_args(argv)
    N = args.points or (1500 if args.small else 8000)
    n, d = args.subsample or max(300, N // 8), 8
    g = np.random.default_rng(0)
    X = gaussian_mixture(N, d, 10, g)
    K = spectra.kernel_operator(X, "rbf")  # bandwidth: median heuristic (rng=0)

    t0 = time.perf_counter()
    den = spectra.density(K, num_probes=10, num_steps=60, rng=0)
    t_slq = time.perf_counter() - t0
    t0 = time.perf_counter()
    fd = freedecomp.decompress(lambda idx: K.block(idx, idx), N, n=n, total=N, rng=0)
    t_fd = time.perf_counter() - t0
    nys = nystrom_eigenvalues(K, n, np.random.default_rng(1))

    t0 = time.perf_counter()
    dense = K.block(slice(None), slice(None))  # the reference only
    lam = np.linalg.eigvalsh(dense)
    t_dense = time.perf_counter() - t0
    v = g.standard_normal(N)
    result = {
        "N": N, "n": n, "bandwidth": K.bandwidth,
        "w1_slq": wasserstein1(den, lam), "w1_freedecomp": wasserstein1(fd.density, lam),
        "w1_nystrom": wasserstein1(nys, lam),
        "mean": float(lam.mean()), "mean_freedecomp": fd.moment(1),
        "top": float(lam[-1]), "top_nystrom": float(nys[-1]),
        "product_error": float(np.abs(K @ v - dense @ v).max() / np.abs(dense @ v).max()),
        "seconds": {"slq": t_slq, "freedecomp": t_fd, "dense": t_dense},
        "slq_products": den.num_matvecs, "model": fd.diagnostics.get("model"),
    }
    # The claims this example makes, checked.
    assert result["product_error"] < 1e-12, result["product_error"]
    assert result["w1_slq"] < 0.01 * result["mean"], result["w1_slq"]  # mean = tr K / N = 1
    assert result["w1_slq"] < 0.1 * result["w1_freedecomp"], result
    assert abs(result["top_nystrom"] / result["top"] - 1) < 0.2, result  # Nystrom: n/N scaling

    _plot(result, lam, den, fd, nys, args.out)
    s = result["seconds"]
    print(f"RBF kernel, N = {N}, bandwidth {K.bandwidth:.3f} (median heuristic): "
          f"W1 to the exact spectrum: SLQ {result['w1_slq']:.2e} ({den.num_matvecs} products, "
          f"{s['slq']:.1f} s), free decompression from n = {n} {result['w1_freedecomp']:.2e} "
          f"({result['model']}, {s['freedecomp']:.1f} s; mean {result['mean_freedecomp']:.3f} "
          f"vs {result['mean']:.3f}), Nystrom {result['w1_nystrom']:.2e}; "
          f"dense eigvalsh {s['dense']:.1f} s")
    return result


def _plot(result: dict, lam: np.ndarray, den, fd, nys: np.ndarray, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectra.plot import COLORS, style_axes

    N, top = result["N"], lam[-1]
    x = np.geomspace(1e-8 * top, 1.5 * top, 600)
    exact_cdf = np.searchsorted(np.sort(lam), x, side="right") / N
    curves = [
        ("exact (dense eigvalsh)", exact_cdf, COLORS["truth"], "-", 2.2),
        (f"SLQ, {den.num_matvecs} products (W1 {result['w1_slq']:.1e})", den.cdf(x),
         COLORS["estimate"], "--", 1.6),
        (f"free decompression from n = {result['n']} (W1 {result['w1_freedecomp']:.1e})",
         fd.cdf(x), COLORS["nodes"], "-.", 1.6),
        (f"Nystrom: block eigenvalues x N/n (W1 {result['w1_nystrom']:.1e})",
         np.searchsorted(np.sort(nys), x, side="right") / N, COLORS["reference"], ":", 1.8),
    ]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12.8, 4.6), dpi=150, layout="constrained")
    for label, F, color, ls, lw in curves:
        count = np.maximum(N * (1.0 - np.asarray(F)), 0.5)
        ax0.loglog(x, count, ls, color=color, linewidth=lw, label=label)
        ax1.semilogx(x, F, ls, color=color, linewidth=lw, label=label)
    ax0.set_ylim(0.5, 1.5 * N)
    style_axes(ax0, xlabel="eigenvalue $\\lambda$",
               ylabel="eigenvalues $\\geq \\lambda$ (count)")
    style_axes(ax1, xlabel="eigenvalue $\\lambda$",
               ylabel="fraction of eigenvalues $\\leq \\lambda$")
    ax0.set_title("large eigenvalues (counting function)")
    ax1.set_title("the bulk near 0 (distribution function)")
    ax1.legend(frameon=False, fontsize="small", loc="lower right")
    fig.suptitle(f"RBF kernel of N = {N:,} Gaussian-mixture points (d = 8), bandwidth "
                 f"{result['bandwidth']:.2f} (median heuristic)")
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "kernel_spectrum.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
