"""impalpable: the application of the three libraries (the ``impalpable`` command line).

``impalpable`` (or ``python -m impalpable``) runs the estimators of :mod:`spectra`,
:mod:`freedecomp` and :mod:`hessian` on matrix files and PyTorch models, and the main
job (``impalpable demo``). Modules: :mod:`impalpable.cli` (arguments and errors),
:mod:`impalpable.commands` (one function per subcommand), :mod:`impalpable.io` (matrix
files), :mod:`impalpable.report` (tables and JSON), :mod:`impalpable.figures` (pictures),
:mod:`impalpable.demo` (the main job). No library package imports this one.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
