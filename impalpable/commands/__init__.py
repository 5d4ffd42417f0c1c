"""The subcommands of the ``impalpable`` command line, one function per command.

Each takes the parsed arguments and returns a :class:`~impalpable.report.Report` that
:func:`impalpable.cli.main` writes (``demo`` writes its own page and returns ``None``).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence

from ..progress import bar_wanted
from ..report import Report
from .decompress_kernel import cmd_decompress_any
from .matrix import cmd_density, cmd_eigs, cmd_trace
from .model import cmd_hessian

__all__ = ["COMMANDS", "cmd_demo", "command_line"]


def command_line(argv: Sequence[str]) -> str:
    """The command line ``impalpable ARGS...`` as a shell would read it back."""
    return "impalpable " + " ".join(shlex.quote(a) for a in argv)


def cmd_demo(args: argparse.Namespace) -> None:
    """``impalpable demo``: the main job on built-in data (see :mod:`impalpable.demo`)."""
    from ..demo import run_demo

    run_demo(args.out, small=args.small, seed=args.seed, quiet=args.quiet,
             progress=bar_wanted(args.quiet), command=command_line(args.argv))


#: Subcommand name -> the function that runs it.
COMMANDS: dict[str, Callable[[argparse.Namespace], Report | None]] = {
    "density": cmd_density, "eigs": cmd_eigs, "trace": cmd_trace,
    "decompress": cmd_decompress_any, "hessian": cmd_hessian, "demo": cmd_demo}
