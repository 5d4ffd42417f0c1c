"""The subcommands on matrix files: ``density``, ``eigs``, ``trace`` and ``decompress``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

import spectra

from .. import figures as figs
from ..io import InputError, file_stem, load_matrix, load_sample
from ..progress import bar_wanted, progress_operator
from ..report import (
    Report,
    decompression_figures,
    density_figures,
    eigs_figures,
    trace_figures,
)

__all__ = [
    "DENSITY_METHODS",
    "EXACT_LIMIT",
    "TRACE_METHODS",
    "cmd_decompress",
    "cmd_density",
    "cmd_eigs",
    "cmd_trace",
    "density_rows",
]

#: Largest matrix for which ``--exact`` forms all eigenvalues densely.
EXACT_LIMIT = 6000
#: ``--method`` choices of the density and trace estimators.
DENSITY_METHODS = ("slq", "kpm")
TRACE_METHODS = ("xtrace", "xnystrace", "hutchpp", "hutchinson")


def _exact_eigenvalues(mf: Any, enabled: bool) -> np.ndarray | None:
    if not enabled:
        return None
    n = mf.shape[0]
    if n > EXACT_LIMIT:
        raise InputError(f"--exact computes all eigenvalues densely, allowed up to n = "
                         f"{EXACT_LIMIT:,}; this matrix has n = {n:,}")
    A = mf.matrix.toarray() if mf.sparse else mf.matrix
    return np.linalg.eigvalsh(np.asarray(A, dtype=np.float64))


def _input_figures(mf: Any) -> dict:
    return {"file": str(mf.path), "shape": list(mf.shape), "sparse": mf.sparse,
            "stored_entries": mf.nnz, "dtype": str(mf.matrix.dtype)}


def density_rows(f: dict) -> list:
    """The table of a density command from its figures (with the exact column if any)."""
    ex = f.get("exact", {})
    return [["products", f["num_matvecs"], ""],
            ["lowest eigenvalue", f["bounds"][0], ex.get("bounds", ("",))[0]],
            ["highest eigenvalue", f["bounds"][1], ex.get("bounds", ("", ""))[1]],
            ["mean eigenvalue", f["mean"], ex.get("mean", "")],
            ["median eigenvalue", f["quantiles"]["0.5"], ""],
            *([["W1 distance to exact", ex["w1"], ""], ["KS distance to exact", ex["ks"], ""]]
              if ex else [])]


def cmd_density(args: argparse.Namespace) -> Report:
    """``impalpable density MATRIX``: SLQ or KPM spectral density of a matrix file."""
    mf = load_matrix(args.matrix, symmetric=True, what="density")
    exact = _exact_eigenvalues(mf, args.exact)
    t0 = time.perf_counter()
    with progress_operator(spectra.as_operator(mf.matrix), args.probes * args.steps,
                           "density", bar_wanted(args.quiet)) as op:
        den = spectra.density(op, method=args.method, num_probes=args.probes,
                              num_steps=args.steps, rng=args.seed)
    figures = {"command": "density", "input": _input_figures(mf), "seed": args.seed,
               "num_probes": args.probes, "num_steps": args.steps,
               **density_figures(den, exact), "seconds": time.perf_counter() - t0}
    return Report(f"{file_stem(mf.path)}_density", figures,
                  ["quantity", "estimate", "exact" if exact is not None else ""],
                  density_rows(figures),
                  lambda: figs.density_figure(
                      den, exact, title=f"{mf.path.name}: spectral density ({den.method.upper()},"
                      f" {args.probes} probes x {args.steps} steps)"),
                  f"impalpable density: {mf.describe()}")


def _matching_exact(lam: np.ndarray | None, k: int, which: str) -> np.ndarray | None:
    """The exact eigenvalues in the order :func:`spectra.eigsh` returns for ``which``."""
    if lam is None:
        return None
    if which == "LA":
        return lam[::-1][:k]
    if which == "SA":
        return lam[:k]
    if which == "LM":
        return lam[np.argsort(-np.abs(lam), kind="stable")][:k]
    lo = k // 2
    return np.concatenate([lam[:lo], lam[lam.size - (k - lo):]])


def cmd_eigs(args: argparse.Namespace) -> Report:
    """``impalpable eigs MATRIX``: extremal eigenvalues of a matrix file (thick-restart Lanczos)."""
    mf = load_matrix(args.matrix, symmetric=True, what="eigs")
    exact = _matching_exact(_exact_eigenvalues(mf, args.exact), args.k, args.which)
    t0 = time.perf_counter()
    with progress_operator(spectra.as_operator(mf.matrix), args.max_matvecs, "eigsh",
                           bar_wanted(args.quiet)) as op:
        res = spectra.eigsh(op, k=args.k, which=args.which, tol=args.tol,
                            max_matvecs=args.max_matvecs, rng=args.seed,
                            return_eigenvectors=False)
    figures = {"command": "eigs", "input": _input_figures(mf), "seed": args.seed, "k": args.k,
               "which": args.which, "tol": args.tol, **eigs_figures(res, exact),
               "seconds": time.perf_counter() - t0}
    rows = [[f"lambda_{i + 1}", v, r, "" if exact is None else exact[i]]
            for i, (v, r) in enumerate(zip(res.eigenvalues, res.residual_norms, strict=True))]
    rows.append(["products", res.num_matvecs, "", ""])
    return Report(f"{file_stem(mf.path)}_eigs", figures,
                  ["eigenvalue", "estimate", "residual", "exact" if exact is not None else ""],
                  rows, lambda: figs.eigs_figure(
                      res, args.tol, exact, title=f"{mf.path.name}: {args.k} eigenvalues "
                      f"({args.which})"),
                  f"impalpable eigs: {mf.describe()}; {res.message}")


def cmd_trace(args: argparse.Namespace) -> Report:
    """``impalpable trace MATRIX``: stochastic trace estimate of a matrix file."""
    need_sym = args.method != "hutchinson"
    mf = load_matrix(args.matrix, symmetric=need_sym, what=f"trace --method {args.method}")
    exact = None
    if args.exact:
        exact = float(mf.matrix.diagonal().sum())
    t0 = time.perf_counter()
    A = spectra.as_operator(mf.matrix, psd=True if args.psd else None)
    with progress_operator(A, args.matvecs, "trace", bar_wanted(args.quiet)) as op:
        est = spectra.trace(op, args.matvecs, method=args.method, rng=args.seed)
    figures = {"command": "trace", "input": _input_figures(mf), "seed": args.seed,
               **trace_figures(est, exact), "seconds": time.perf_counter() - t0}
    rows = [["trace", est.value, "" if exact is None else exact],
            ["standard error", est.stderr, ""], ["products", est.num_matvecs, ""]]
    return Report(f"{file_stem(mf.path)}_trace", figures,
                  ["quantity", "estimate", "exact" if exact is not None else ""], rows,
                  lambda: figs.trace_figure(est, exact,
                                            title=f"{mf.path.name}: trace ({est.method})"),
                  f"impalpable trace: {mf.describe()}")


def _decompression_picture(res: Any, eigs: np.ndarray, title: str) -> Any:
    from freedecomp.plot import decompression

    return decompression(res, sample=eigs, title=title)


def cmd_decompress(args: argparse.Namespace) -> Report:
    """``impalpable decompress SAMPLE --size N``: free decompression of a sampled block."""
    from freedecomp import decompress

    sample, kind = load_sample(args.sample)
    t0 = time.perf_counter()
    sizes = args.size[0] if len(args.size) == 1 else args.size
    res = decompress(sample, sizes, method=args.method, columns=args.columns, rng=args.seed)
    figures = {"command": "decompress", "input": {"file": str(args.sample), "kind": kind},
               "seed": args.seed, **decompression_figures(res),
               "seconds": time.perf_counter() - t0}
    eigs = sample if kind == "eigenvalues" else np.linalg.eigvalsh(sample)
    rows = [[f"{f['size']:,}", f"{f['alpha']:g}", f"{f['edges'][0][0]:.6g}",
             f"{f['edges'][-1][1]:.6g}", f"{f['mean']:.6g}", f"{f['trace']:.6g}",
             "yes" if f["decompressible"] else "NO"] for f in figures["flow"]]
    return Report(f"{file_stem(args.sample)}_decompress", figures,
                  ["size N", "N/n", "lower edge", "upper edge", "mean", "trace", "reliable"],
                  rows, lambda: _decompression_picture(
                      res, eigs, f"{Path(args.sample).name}: free decompression from "
                      f"n = {res.sample_size:,} ({figures['model']})"),
                  f"impalpable decompress: {kind} of an n = {res.sample_size:,} sample; "
                  f"model {figures['model']}")
