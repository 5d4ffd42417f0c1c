"""The ``hessian`` subcommand: curvature spectra of a user's PyTorch model.

torch and :mod:`hessian` are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import figures as figs
from ..io import InputError
from ..progress import bar_wanted
from ..report import Report, density_figures, eigs_figures, trace_figures
from .matrix import DENSITY_METHODS, TRACE_METHODS, density_rows

__all__ = ["cmd_hessian", "load_function"]


def _import_module(mod_name: str) -> Any:
    """Import a dotted module name or a ``.py`` file (its folder on ``sys.path`` meanwhile)."""
    if mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name:
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
        return module
    cwd_added = "" not in sys.path and str(Path.cwd()) not in sys.path
    if cwd_added:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(mod_name)
    finally:
        if cwd_added:
            sys.path.remove(str(Path.cwd()))


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
    try:
        module = _import_module(mod_name)
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
    allowed = {"density": DENSITY_METHODS, "trace": TRACE_METHODS, "eigs": (None,)}[what]
    if method is None:
        return allowed[0]
    if method not in allowed:
        raise InputError(f"--method {method} does not apply to --what {what}; allowed: "
                         + (", ".join(allowed) if allowed[0] else "none (eigs has no method)"))
    return method


def cmd_hessian(args: argparse.Namespace) -> Report:
    """``impalpable hessian MODULE:FUNCTION``: density, eigenvalues or trace of a curvature."""
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
    kw = {"rng": args.seed, "progress": bar_wanted(args.quiet)}
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
        return Report(label, figures, ["quantity", "estimate", ""], density_rows(figures),
                      lambda: figs.density_figure(den, title=f"density of the {title}"),
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
                      lambda: figs.eigs_figure(res, args.tol, title=title), head)
    est = hessian.trace(op, num_matvecs=args.matvecs, method=method, **kw)
    figures = {**base, **trace_figures(est), "seconds": time.perf_counter() - t0}
    rows = [["trace", est.value], ["standard error", est.stderr], ["products", est.num_matvecs]]
    return Report(label, figures, ["quantity", "estimate"], rows,
                  lambda: figs.trace_figure(est, title=f"trace of the {title}"), head)
