"""The ``impalpable`` command line: spectra of matrix files and of PyTorch models.

::

    impalpable density MATRIX [--method slq|kpm] [--probes P] [--steps S] [--exact]
    impalpable eigs MATRIX [-k K] [--which LA|SA|LM|BE] [--tol T] [--exact]
    impalpable trace MATRIX [--method xtrace|xnystrace|hutchpp|hutchinson] [--matvecs M]
    impalpable decompress SAMPLE --size N [N ...] [--method auto|...]
    impalpable hessian MODULE:FUNCTION [--what density|eigs|trace] [--kind hessian|ggn|...]
    impalpable demo [--small]

``MATRIX`` is a ``.npy`` file, a ``.npz`` archive (one dense array, or a scipy sparse
matrix written by ``scipy.sparse.save_npz``) or a Matrix Market ``.mtx`` file. Every
command writes ``<name>.png`` and ``<name>.json`` (its figures) into ``--out``
(default ``out/<command>``) and prints a short table. Bad input ends with one line
``impalpable: error: ...`` on standard error and exit status 2.

This is the application layer: the one module of :mod:`spectra` that imports
:mod:`freedecomp`, :mod:`hessian` (and so torch), lazily inside a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ._io import InputError, file_stem, load_matrix, load_sample
from ._report import (
    Report,
    decompression_figures,
    density_figures,
    eigs_figures,
    trace_figures,
)

__all__ = ["main"]

#: Largest matrix for which ``--exact`` forms all eigenvalues densely.
EXACT_LIMIT = 6000
_ERRORS = (ValueError, TypeError, FloatingPointError, OSError, MemoryError)
# warnings meant for programmers, not for the user of a command: not reported
_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning,
                       ImportWarning)


# ============================================================================ progress
def _bar_wanted(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def _progress(op: Any, total: int | None, desc: str, enabled: bool) -> Any:
    """Yield ``op``, or a wrapper that advances a tqdm bar on stderr with every product."""
    if not enabled:
        yield op
        return
    from tqdm.auto import tqdm

    from .operators import Operator

    bar = tqdm(total=total, desc=desc, unit="vec", file=sys.stderr, leave=False, delay=0.5)

    def block(V: Any) -> Any:
        out = op.matmat(V)
        bar.update(V.shape[1])
        return out

    wrapped = Operator.from_matvec(lambda v: block(v[:, None])[:, 0], op.shape, dtype=op.dtype,
                                   device=op.device, symmetric=op.symmetric, psd=op.psd,
                                   matmat=block)
    try:
        yield wrapped
    finally:
        bar.close()


# ============================================================================ matrices
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


def _density_rows(f: dict) -> list:
    ex = f.get("exact", {})
    return [["products", f["num_matvecs"], ""],
            ["lowest eigenvalue", f["bounds"][0], ex.get("bounds", ("",))[0]],
            ["highest eigenvalue", f["bounds"][1], ex.get("bounds", ("", ""))[1]],
            ["mean eigenvalue", f["mean"], ex.get("mean", "")],
            ["median eigenvalue", f["quantiles"]["0.5"], ""],
            *([["W1 distance to exact", ex["w1"], ""], ["KS distance to exact", ex["ks"], ""]]
              if ex else [])]


def _cmd_density(args: argparse.Namespace) -> Report:
    import spectra

    mf = load_matrix(args.matrix, symmetric=True, what="density")
    exact = _exact_eigenvalues(mf, args.exact)
    t0 = time.perf_counter()
    with _progress(spectra.as_operator(mf.matrix), args.probes * args.steps, "density",
                   _bar_wanted(args.quiet)) as op:
        den = spectra.density(op, method=args.method, num_probes=args.probes,
                              num_steps=args.steps, rng=args.seed)
    figures = {"command": "density", "input": _input_figures(mf), "seed": args.seed,
               "num_probes": args.probes, "num_steps": args.steps,
               **density_figures(den, exact), "seconds": time.perf_counter() - t0}
    return Report(f"{file_stem(mf.path)}_density", figures,
                  ["quantity", "estimate", "exact" if exact is not None else ""],
                  _density_rows(figures),
                  lambda: _figures().density_figure(
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


def _cmd_eigs(args: argparse.Namespace) -> Report:
    import spectra

    mf = load_matrix(args.matrix, symmetric=True, what="eigs")
    exact = _matching_exact(_exact_eigenvalues(mf, args.exact), args.k, args.which)
    t0 = time.perf_counter()
    with _progress(spectra.as_operator(mf.matrix), args.max_matvecs, "eigsh",
                   _bar_wanted(args.quiet)) as op:
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
                  rows, lambda: _figures().eigs_figure(
                      res, args.tol, exact, title=f"{mf.path.name}: {args.k} eigenvalues "
                      f"({args.which})"),
                  f"impalpable eigs: {mf.describe()}; {res.message}")


def _cmd_trace(args: argparse.Namespace) -> Report:
    import spectra

    need_sym = args.method != "hutchinson"
    mf = load_matrix(args.matrix, symmetric=need_sym, what=f"trace --method {args.method}")
    exact = None
    if args.exact:
        exact = float(mf.matrix.diagonal().sum())
    t0 = time.perf_counter()
    A = spectra.as_operator(mf.matrix, psd=True if args.psd else None)
    with _progress(A, args.matvecs, "trace", _bar_wanted(args.quiet)) as op:
        est = spectra.trace(op, args.matvecs, method=args.method, rng=args.seed)
    figures = {"command": "trace", "input": _input_figures(mf), "seed": args.seed,
               **trace_figures(est, exact), "seconds": time.perf_counter() - t0}
    rows = [["trace", est.value, "" if exact is None else exact],
            ["standard error", est.stderr, ""], ["products", est.num_matvecs, ""]]
    return Report(f"{file_stem(mf.path)}_trace", figures,
                  ["quantity", "estimate", "exact" if exact is not None else ""], rows,
                  lambda: _figures().trace_figure(est, exact,
                                                  title=f"{mf.path.name}: trace ({est.method})"),
                  f"impalpable trace: {mf.describe()}")


def _figures() -> Any:
    from . import _figures as figs

    return figs


# ============================================================================ decompress
def _cmd_decompress(args: argparse.Namespace) -> Report:
    from freedecomp.decompress import decompress

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
                  rows, lambda: _figures().flow_figure(
                      res, eigs, title=f"{Path(args.sample).name}: free decompression from "
                      f"n = {res.sample_size:,} ({figures['model']})"),
                  f"impalpable decompress: {kind} of an n = {res.sample_size:,} sample; "
                  f"model {figures['model']}")


# ============================================================================ hessian
def load_function(spec: str) -> Callable:
    """Import the function named by ``MODULE:FUNCTION``.

    ``MODULE`` is a dotted module name (importable from ``sys.path`` or the current
    folder) or a path to a ``.py`` file (its folder is on ``sys.path`` while it loads).

    Raises
    ------
    InputError
        A malformed spec, a missing module or file, a module that fails to import (one
        line naming the exception), or no callable of that name.
    """
    mod_name, sep, fn_name = spec.rpartition(":")
    if not sep or not mod_name or not fn_name:
        raise InputError(f"expected MODULE:FUNCTION (e.g. mymodel.py:setup or pkg.models:setup)"
                         f", got {spec!r}")
    is_path = mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name
    try:
        if is_path:
            path = Path(mod_name)
            if not path.is_file():
                raise InputError(f"{path}: no such file")
            found = importlib.util.spec_from_file_location(f"_impalpable_user_{path.stem}", path)
            module = importlib.util.module_from_spec(found)
            folder = str(path.resolve().parent)
            sys.path.insert(0, folder)
            try:
                found.loader.exec_module(module)
            finally:
                sys.path.remove(folder)
        else:
            cwd_added = "" not in sys.path and str(Path.cwd()) not in sys.path
            if cwd_added:
                sys.path.insert(0, str(Path.cwd()))
            try:
                module = importlib.import_module(mod_name)
            finally:
                if cwd_added:
                    sys.path.remove(str(Path.cwd()))
    except InputError:
        raise
    except ModuleNotFoundError as err:
        raise InputError(f"cannot import {mod_name!r} ({err}); give a module importable from "
                         "the current folder or sys.path, or a path to a .py file") from None
    except Exception as err:  # the user's module failed: one line, not a traceback
        raise InputError(f"importing {mod_name} raised {type(err).__name__}: {err} "
                         "(--traceback shows where)") from err
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise InputError(f"{mod_name} has no function {fn_name!r}")
    return fn


def _model_setup(spec: str) -> tuple[Any, Any, Any]:
    fn = load_function(spec)
    try:
        out = fn()
    except Exception as err:  # the user's function failed: one line, not a traceback
        raise InputError(f"{spec}() raised {type(err).__name__}: {err} "
                         "(--traceback shows where)") from err
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        raise InputError(f"{spec}() must return (model, loss_fn, data), got "
                         f"{type(out).__name__}" + (f" of length {len(out)}"
                                                    if isinstance(out, (tuple, list)) else ""))
    import torch

    model, loss_fn, data = out
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{spec}() returned a {type(model).__name__} as the model; expected a "
                         "torch.nn.Module")
    if loss_fn is not None and not callable(loss_fn):
        raise InputError(f"{spec}() returned a non-callable loss function "
                         f"({type(loss_fn).__name__})")
    return model, loss_fn, data


def _hessian_method(what: str, method: str | None) -> str | None:
    allowed = {"density": _DENSITY_METHODS, "trace": _TRACE_METHODS, "eigs": (None,)}[what]
    if method is None:
        return allowed[0]
    if method not in allowed:
        raise InputError(f"--method {method} does not apply to --what {what}; allowed: "
                         + (", ".join(allowed) if allowed[0] else "none (eigs has no method)"))
    return method


def _cmd_hessian(args: argparse.Namespace) -> Report:
    try:
        import torch

        import hessian
    except ImportError as err:
        raise InputError(f"impalpable hessian needs PyTorch ({err}); pip install torch") from None
    method = _hessian_method(args.what, args.method)
    model, loss_fn, data = _model_setup(args.function)
    dtype = {"model": None, "float32": torch.float32, "float64": torch.float64}[args.dtype]
    op = hessian.curvature_operator(model, None if args.kind == "jtj" else loss_fn, data,
                                    kind=args.kind, dtype=dtype)
    kw = {"rng": args.seed, "progress": _bar_wanted(args.quiet)}
    t0 = time.perf_counter()
    base = {"command": "hessian", "function": args.function, "kind": args.kind,
            "what": args.what, "seed": args.seed, "num_params": op.shape[0]}
    label = f"{args.function.rpartition(':')[2]}_{args.kind}_{args.what}"
    head = f"impalpable hessian: {args.kind} of {args.function}, {op.shape[0]:,} parameters"
    title = f"{args.kind} of {args.function} ({op.shape[0]:,} parameters)"
    if args.what == "density":
        den = hessian.density(op, method=method, num_probes=args.probes, num_steps=args.steps,
                              **kw)
        figures = {**base, "num_probes": args.probes, "num_steps": args.steps,
                   **density_figures(den), "seconds": time.perf_counter() - t0}
        return Report(label, figures, ["quantity", "estimate", ""], _density_rows(figures),
                      lambda: _figures().density_figure(den, title=f"density of the {title}"),
                      head)
    if args.what == "eigs":
        res = hessian.top_eigenvalues(op, k=args.k, which=args.which, tol=args.tol,
                                      max_matvecs=args.max_matvecs, **kw)
        figures = {**base, "k": args.k, "which": args.which, "tol": args.tol,
                   **eigs_figures(res), "seconds": time.perf_counter() - t0}
        rows = [[f"lambda_{i + 1}", v, r] for i, (v, r) in
                enumerate(zip(res.eigenvalues, res.residual_norms, strict=True))]
        rows.append(["products", res.num_matvecs, ""])
        return Report(label, figures, ["eigenvalue", "estimate", "residual"], rows,
                      lambda: _figures().eigs_figure(res, args.tol, title=title), head)
    est = hessian.trace(op, num_matvecs=args.matvecs, method=method, **kw)
    figures = {**base, **trace_figures(est), "seconds": time.perf_counter() - t0}
    rows = [["trace", est.value], ["standard error", est.stderr], ["products", est.num_matvecs]]
    return Report(label, figures, ["quantity", "estimate"], rows,
                  lambda: _figures().trace_figure(est, title=f"trace of the {title}"), head)


# ============================================================================ demo
def _cmd_demo(args: argparse.Namespace) -> None:
    from ._demo import run_demo

    run_demo(args.out, small=args.small, seed=args.seed, quiet=args.quiet,
             progress=_bar_wanted(args.quiet), command=_command_line(args.argv))


def _command_line(argv: Sequence[str]) -> str:
    import shlex

    return "impalpable " + " ".join(shlex.quote(a) for a in argv)


# ============================================================================ parser
class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return v


_DENSITY_METHODS = ("slq", "kpm")
_TRACE_METHODS = ("xtrace", "xnystrace", "hutchpp", "hutchinson")


def _add_estimator_options(p: argparse.ArgumentParser, what: str, method: bool = True) -> None:
    if what == "density":
        if method:
            p.add_argument("--method", choices=_DENSITY_METHODS, default="slq",
                           help="stochastic Lanczos quadrature or kernel polynomial method")
        p.add_argument("--probes", type=_positive_int, default=10, help="random probes (10)")
        p.add_argument("--steps", type=_positive_int, default=80,
                       help="Lanczos steps (SLQ) or Chebyshev moment pairs (KPM) (80)")
    elif what == "eigs":
        p.add_argument("-k", type=_positive_int, default=6, help="number of eigenvalues (6)")
        p.add_argument("--which", choices=("LA", "SA", "LM", "BE"), default="LA",
                       help="largest, smallest, largest magnitude, both ends (LA)")
        p.add_argument("--tol", type=_positive_float, default=1e-6,
                       help="relative residual tolerance (1e-6)")
        p.add_argument("--max-matvecs", type=_positive_int, default=None,
                       help="budget of products (default: the estimator's)")
    else:
        if method:
            p.add_argument("--method", choices=_TRACE_METHODS, default="xtrace",
                           help="trace estimator (xtrace)")
        p.add_argument("--matvecs", type=_positive_int, default=100,
                       help="budget of products (100)")


_MATRIX_HELP = ".npy, .npz (one dense array, or scipy.sparse.save_npz) or .mtx file"


def build_parser() -> argparse.ArgumentParser:
    """The ``impalpable`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default out/<command>)")
    common.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed gives the same figures (0)")
    common.add_argument("--quiet", action="store_true", help="print nothing but errors")
    common.add_argument("--traceback", action="store_true",
                        help="on an error, show the full traceback instead of one line")
    parser = _Parser(prog="impalpable", description="Spectra of matrix files and of PyTorch "
                     "models: densities, extremal eigenvalues, traces, free decompression.",
                     epilog="MATRIX: .npy, .npz (dense, or scipy sparse), .mtx (Matrix Market)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    exact = f"also compute all eigenvalues densely (n <= {EXACT_LIMIT}) and compare"

    p = sub.add_parser("density", parents=[common], help="spectral density of a matrix file")
    p.add_argument("matrix", type=Path, metavar="MATRIX", help=_MATRIX_HELP)
    _add_estimator_options(p, "density")
    p.add_argument("--exact", action="store_true", help=exact)

    p = sub.add_parser("eigs", parents=[common], help="extremal eigenvalues of a matrix file")
    p.add_argument("matrix", type=Path, metavar="MATRIX", help=_MATRIX_HELP)
    _add_estimator_options(p, "eigs")
    p.add_argument("--exact", action="store_true", help=exact)

    p = sub.add_parser("trace", parents=[common], help="trace of a matrix file")
    p.add_argument("matrix", type=Path, metavar="MATRIX", help=_MATRIX_HELP)
    _add_estimator_options(p, "trace")
    p.add_argument("--psd", action="store_true",
                   help="declare the matrix positive semi-definite (needed by xnystrace)")
    p.add_argument("--exact", action="store_true", help="also sum the diagonal and compare")

    p = sub.add_parser("decompress", parents=[common],
                       help="spectral law of a large matrix from a sampled submatrix")
    p.add_argument("sample", type=Path, metavar="SAMPLE",
                   help="eigenvalues of a principal submatrix (1-d .npy) or the symmetric "
                   "submatrix (.npy, .npz, .mtx)")
    p.add_argument("--size", type=_positive_int, nargs="+", required=True, metavar="N",
                   help="target size(s), larger than the sample; several give a flow")
    p.add_argument("--method", choices=("auto", "rational", "algebraic", "free", "deformed"),
                   default="auto", help="model family (auto: chosen by validation)")
    p.add_argument("--columns", type=_positive_int, default=None,
                   help="column count m of a Gram matrix X X^T / m sampled by rows "
                   "(implies the deformed law)")

    p = sub.add_parser("hessian", parents=[common], help="curvature spectrum of a PyTorch model")
    p.add_argument("function", metavar="MODULE:FUNCTION",
                   help="a function returning (model, loss_fn, data); MODULE is a dotted name "
                   "or a path to a .py file")
    p.add_argument("--what", choices=("density", "eigs", "trace"), default="density",
                   help="what to estimate (density)")
    p.add_argument("--kind", choices=("hessian", "ggn", "fisher", "jtj"), default="hessian",
                   help="curvature matrix: Hessian, generalised Gauss-Newton, empirical "
                   "Fisher, parameter-space Jacobian Gram (hessian)")
    p.add_argument("--dtype", choices=("model", "float32", "float64"), default="model",
                   help="evaluation precision (default: the model's)")
    p.add_argument("--method", choices=_DENSITY_METHODS + _TRACE_METHODS, default=None,
                   help="density: slq (default) or kpm; trace: xtrace (default), xnystrace, "
                   "hutchpp or hutchinson")
    for what in ("density", "eigs", "trace"):
        _add_estimator_options(p, what, method=False)

    p = sub.add_parser("demo", parents=[common], help="the main job on built-in data")
    p.add_argument("--small", action="store_true", help="a reduced size that runs in seconds")
    return parser


_COMMANDS = {"density": _cmd_density, "eigs": _cmd_eigs, "trace": _cmd_trace,
             "decompress": _cmd_decompress, "hessian": _cmd_hessian, "demo": _cmd_demo}


def _run(args: argparse.Namespace) -> int:
    """Run a subcommand; its warnings become ``impalpable: warning:`` lines (and JSON)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        report = _COMMANDS[args.command](args)
        caught = list(dict.fromkeys(" ".join(str(w.message).split()) for w in record
                                    if not issubclass(w.category, _DEVELOPER_WARNINGS)))
        if report is not None:
            if caught:
                report.figures["warnings"] = caught
            report.write(args.out, args.quiet)
    for msg in caught:
        print(f"impalpable: warning: {msg}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``impalpable`` command line; return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad input (one line on standard error), 130 when
        interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, already printed)
        return int(stop.code or 0)
    args.argv = argv
    if args.out is None:
        args.out = Path("out") / args.command
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("impalpable: interrupted", file=sys.stderr)
        return 130
    except _ERRORS as err:
        if args.traceback:
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"impalpable: error: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
