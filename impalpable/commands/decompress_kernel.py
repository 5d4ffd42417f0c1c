"""``impalpable decompress POINTS --kernel K --sample n --size N``: a kernel spectrum at scale.

The spectrum of the ``N x N`` kernel matrix of a points file from ``--blocks`` random
``n``-point subsamples: each block's spectrum is estimated (dense ``eigvalsh`` up to
:data:`freedecomp.blocks.DENSE_MAX` points, deflated SLQ above, the kernel never
formed) and free decompression extrapolates them to ``N``
(:func:`freedecomp.decompress` with :func:`freedecomp.samplers.kernel_blocks`). A tqdm
bar counts the block estimates on a terminal. ``--exact`` also computes the true
spectrum densely (``N <= EXACT_LIMIT``) and reports the errors.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..io import InputError, file_stem, load_matrix
from ..progress import bar_wanted
from ..report import Report, decompression_figures
from .matrix import EXACT_LIMIT, cmd_decompress

__all__ = ["KERNEL_CHOICES", "cmd_decompress_any", "cmd_decompress_kernel"]

#: ``--kernel`` choices (the named kernels of :func:`spectra.kernel_operator`).
KERNEL_CHOICES = ("rbf", "laplace", "matern32", "matern52", "polynomial", "linear", "cosine")


def cmd_decompress_any(args: argparse.Namespace) -> Report:
    """``impalpable decompress``: the kernel mode with ``--kernel``, else a sampled block."""
    if getattr(args, "kernel", None) is None:
        if getattr(args, "sample_size", None) is not None:
            raise InputError("--sample needs --kernel (a points file); for a sampled "
                             "submatrix, pass the submatrix or its eigenvalues")
        return cmd_decompress(args)
    return cmd_decompress_kernel(args)


def _points(path: Path) -> np.ndarray:
    mf = load_matrix(path, square=False, what="a points file (N x d)")
    if mf.sparse:
        raise InputError(f"{path}: the points must be a dense N x d array, not sparse")
    return np.asarray(mf.matrix, dtype=np.float64)


def _check(args: argparse.Namespace, N_points: int) -> tuple[int, int]:
    if args.sample_size is None:
        raise InputError("--kernel needs --sample n (the points per block)")
    if args.columns is not None or args.method == "deformed":
        raise InputError("--columns and --method deformed are for Gram matrices sampled by "
                         "rows, not for kernel matrices")
    if len(args.size) != 1:
        raise InputError("--kernel takes one --size N")
    N, n = args.size[0], args.sample_size
    if n >= N_points:
        raise InputError(f"--sample {n} must be below the number of points ({N_points:,})")
    if N > N_points:
        raise InputError(f"--size {N:,} exceeds the number of points ({N_points:,}): the "
                         "kernel matrix of this file is at most that large")
    if args.exact and (N != N_points or N > EXACT_LIMIT):
        raise InputError(f"--exact needs --size equal to the number of points and at most "
                         f"{EXACT_LIMIT:,} (here N = {N:,}, {N_points:,} points)")
    return N, n


def _exact_figures(res: Any, lam: np.ndarray) -> dict:
    from spectra.distances import wasserstein1

    d = res.density
    est_top = float(res.quantile(1 - 0.5 / res.size))
    return {"w1_over_sd": wasserstein1(d.nodes, lam, d.weights) / float(lam.std()),
            "trace": float(lam.sum()), "trace_error": res.trace() / float(lam.sum()) - 1,
            "top": float(lam[-1]), "top_error": est_top / float(lam[-1]) - 1}


def cmd_decompress_kernel(args: argparse.Namespace) -> Report:
    """Kernel mode of ``impalpable decompress`` (module docstring)."""
    from freedecomp import decompress
    from freedecomp.samplers import kernel_blocks

    X = _points(args.sample)
    N, n = _check(args, X.shape[0])
    t0 = time.perf_counter()
    kb = kernel_blocks(X, args.kernel, bandwidth=args.bandwidth, rng=args.seed)
    opts = {"num_probes": args.probes, "num_steps": args.steps, "rtol": args.rtol,
            "progress": bar_wanted(args.quiet)}
    res = decompress(kb, N, n=n, total=X.shape[0], method=args.method, rng=args.seed,
                     num_samples=args.blocks, blocks=opts)
    seconds = time.perf_counter() - t0
    lam = None
    if args.exact:
        idx = np.arange(N)
        lam = np.linalg.eigvalsh(kb.operator.block(idx, idx))
    est = res.diagnostics.block_estimates or ()
    figures = {"command": "decompress", "seed": args.seed,
               "input": {"file": str(args.sample), "kind": "points", "points": X.shape[0],
                         "dimension": X.shape[1]},
               "kernel": {"name": args.kernel, "bandwidth": kb.operator.bandwidth},
               "blocks": [dict(r) for r in est], **decompression_figures(res),
               "seconds": seconds, **({"exact": _exact_figures(res, lam)} if lam is not None
                                      else {})}
    f = figures["flow"][-1]
    rows = [["size N", f"{N:,}", ""], ["points per block n", f"{n:,}", ""],
            ["blocks", f"{len(est)} ({est[0]['method'] if est else '?'})", ""],
            ["products (all blocks)", f"{sum(r['num_matvecs'] for r in est):,}", ""],
            ["SLQ W1 error (sd)", f"{max((r['relative_error'] for r in est), default=0):.2g}",
             ""],
            ["largest eigenvalue", f"{float(res.quantile(1 - 0.5 / N)):.6g}",
             f"{lam[-1]:.6g}" if lam is not None else ""],
            ["trace", f"{f['trace']:.6g}", f"{lam.sum():.6g}" if lam is not None else ""],
            ["reliable", "yes" if f["decompressible"] else "NO", ""]]
    if lam is not None:
        rows.append(["W1 / sd to exact", f"{figures['exact']['w1_over_sd']:.3g}", ""])
    title = (f"{Path(args.sample).name}: {args.kernel} kernel, N = {N:,} from "
             f"{len(est)} blocks of n = {n:,} ({figures['model']})")
    return Report(f"{file_stem(args.sample)}_kernel_decompress", figures,
                  ["quantity", "estimate", "exact" if lam is not None else ""], rows,
                  lambda: _picture(res, lam, title),
                  f"impalpable decompress: {args.kernel} kernel of {X.shape[0]:,} points, "
                  f"model {figures['model']}")


def _picture(res: Any, lam: np.ndarray | None, title: str) -> Any:
    from freedecomp.plot import decompression

    return decompression(res, eigenvalues=lam, title=title)
