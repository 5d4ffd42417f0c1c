"""The ``impalpable`` command line: spectra of matrix files and of PyTorch models.

::

    impalpable density MATRIX [--method slq|kpm] [--probes P] [--steps S] [--exact]
    impalpable eigs MATRIX [-k K] [--which LA|SA|LM|BE] [--tol T] [--exact]
    impalpable trace MATRIX [--method xtrace|xnystrace|hutchpp|hutchinson] [--matvecs M]
    impalpable decompress SAMPLE --size N [N ...] [--method auto|...]
    impalpable decompress POINTS --kernel rbf --sample n --size N [--blocks B] [--rtol R]
    impalpable hessian MODULE:FUNCTION [--what density|eigs|trace] [--kind hessian|ggn|...]
    impalpable demo [--small]

``MATRIX`` is a ``.npy`` file, a ``.npz`` archive (one dense array, or a scipy sparse
matrix written by ``scipy.sparse.save_npz``) or a Matrix Market ``.mtx`` file. Every
command writes ``<name>.png`` and ``<name>.json`` (its figures) into ``--out``
(default ``out/<command>``) and prints a short table. Bad input ends with one line
``impalpable: error: ...`` on standard error and exit status 2: among it, files that are
not regular files (a named pipe would block), and files whose declared size (read from
the header alone) with the command's working vectors exceeds the available memory.

This module parses the arguments and reports errors; the subcommands live in
:mod:`impalpable.commands`. torch and :mod:`hessian` are imported only by the
``hessian`` and ``demo`` subcommands.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spectra.validation import check_float, check_int

from .commands import COMMANDS
from .commands.matrix import DENSITY_METHODS, EXACT_LIMIT, TRACE_METHODS
from .io import check_memory

__all__ = ["build_parser", "main"]

_ERRORS = (ValueError, TypeError, FloatingPointError, OSError, MemoryError)
# warnings meant for programmers, not for the user of a command: not reported
_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning,
                       ImportWarning)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _argument_type(parse: Callable[[str], Any], check: Callable[..., Any],
                   **bounds: Any) -> Callable[[str], Any]:
    """An argparse ``type`` that parses the text and checks the value with ``check``.

    ``check`` is a :mod:`spectra.validation` checker; its message becomes the usage error.
    """
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = text  # the checker refuses the text itself, with its message
        try:
            return check(value, "the value", **bounds)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return convert


_positive_int = _argument_type(int, check_int, low=1)
_positive_float = _argument_type(float, check_float, low=0.0, low_open=True)


def _add_estimator_options(p: argparse.ArgumentParser, what: str, method: bool = True) -> None:
    if what == "density":
        if method:
            p.add_argument("--method", choices=DENSITY_METHODS, default="slq",
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
            p.add_argument("--method", choices=TRACE_METHODS, default="xtrace",
                           help="trace estimator (xtrace)")
        p.add_argument("--matvecs", type=_positive_int, default=100,
                       help="budget of products (100)")


_MATRIX_HELP = ".npy, .npz (one dense array, or scipy.sparse.save_npz) or .mtx file"


def _add_matrix_commands(sub: Any, common: argparse.ArgumentParser) -> None:
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
    _add_kernel_options(p)


def _add_kernel_options(p: argparse.ArgumentParser) -> None:
    """Kernel mode of ``decompress`` (:mod:`impalpable.commands.decompress_kernel`)."""
    from freedecomp.blocks import RTOL

    from .commands.decompress_kernel import KERNEL_CHOICES

    g = p.add_argument_group("kernel mode: SAMPLE is a points file (N x d)")
    g.add_argument("--kernel", choices=KERNEL_CHOICES, default=None,
                   help="the kernel matrix of the points, never formed")
    g.add_argument("--sample", dest="sample_size", type=_positive_int, default=None,
                   metavar="n", help="points per block")
    g.add_argument("--blocks", type=_positive_int, default=4, help="blocks drawn (4)")
    g.add_argument("--bandwidth", type=_positive_float, default=None,
                   help="kernel length scale (default: the median heuristic)")
    g.add_argument("--probes", type=_positive_int, default=10,
                   help="SLQ probes per block above the dense size (10; the adaptive "
                   "budget may raise them)")
    g.add_argument("--steps", type=_positive_int, default=None,
                   help="Lanczos steps per probe of an SLQ block (default: adaptive, "
                   "raised until the estimated W1 error is at most --rtol block sds)")
    g.add_argument("--rtol", type=_positive_float, default=RTOL,
                   help=f"target of the adaptive SLQ budget, W1 over the block's sd "
                   f"({RTOL:g}); ignored with --steps")
    g.add_argument("--exact", action="store_true",
                   help=f"also compute the true spectrum densely (N <= {EXACT_LIMIT})")


def _add_model_commands(sub: Any, common: argparse.ArgumentParser) -> None:
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
    p.add_argument("--method", choices=DENSITY_METHODS + TRACE_METHODS, default=None,
                   help="density: slq (default) or kpm; trace: xtrace (default), xnystrace, "
                   "hutchpp or hutchinson")
    for what in ("density", "eigs", "trace"):
        _add_estimator_options(p, what, method=False)

    p = sub.add_parser("demo", parents=[common], help="the main job on built-in data")
    p.add_argument("--small", action="store_true", help="a reduced size that runs in seconds")


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
    _add_matrix_commands(sub, common)
    _add_model_commands(sub, common)
    return parser


def _work_vectors(args: argparse.Namespace) -> int:
    """A lower bound on the length-n float64 vectors a matrix command holds at once."""
    if args.command == "density":
        return 2 * args.probes + args.steps  # a probe block and one Krylov basis
    if args.command == "eigs":
        return 3 * args.k + 20  # the Lanczos basis of the default restart
    if args.command == "trace":
        return args.matvecs  # the sketch and the probes
    return 0


def _run(args: argparse.Namespace) -> int:
    """Run a subcommand; its warnings become ``impalpable: warning:`` lines (and JSON)."""
    source = getattr(args, "matrix", None) or getattr(args, "sample", None)
    if source is not None and Path(source).is_file():  # sizes before anything is read
        check_memory(source, _work_vectors(args))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        report = COMMANDS[args.command](args)
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
