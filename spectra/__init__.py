"""spectra: matrix-free spectral estimation on any operator.

Estimators take an :class:`Operator` (or a numpy array, scipy sparse matrix or
``LinearOperator``, torch tensor) and a budget of products ``num_matvecs``, and
return frozen result objects with diagnostics.

>>> import numpy as np, spectra
>>> A = spectra.testing.matrix_from_eigenvalues(np.linspace(1, 2, 50), rng=0)
>>> round(float(spectra.trace(A, 50, rng=0).value), 6)
75.0

Public submodules: :mod:`~spectra.operators` (the operator protocol, kernel matrices),
:mod:`~spectra.krylov` (Lanczos, eigenpairs), :mod:`~spectra.stochtrace` (trace and
diagonal estimators), :mod:`~spectra.quadrature` (stochastic Lanczos quadrature),
:mod:`~spectra.densities` (spectral densities), :mod:`~spectra.gramians` (Gramians,
Hankel singular values), :mod:`~spectra.results`, :mod:`~spectra.probes`,
:mod:`~spectra.distances`, :mod:`~spectra.backend`, :mod:`~spectra.validation`,
:mod:`~spectra.plot` and :mod:`~spectra.testing`. Every module name differs from the
functions exported here, so importing a submodule never shadows one of them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .operators import Operator, as_operator
from .results import (
    ConvergenceWarning,
    EigResult,
    Estimate,
    LanczosResult,
    NonFiniteError,
    SpectralDensity,
)

__version__ = "0.1.0"

# Estimators and optional submodules load on first use, so that ``import spectra``
# stays fast and pulls neither scipy.sparse, Numba, torch nor matplotlib.
_LAZY = {
    "lanczos": ("krylov", "lanczos"),
    "eigsh": ("krylov", "eigsh"),
    "trace": ("stochtrace", "trace"),
    "diagonal": ("stochtrace", "diagonal"),
    "trace_function": ("quadrature", "trace_function"),
    "logdet": ("quadrature", "logdet"),
    "density": ("densities", "density"),
    "gramian": ("gramians", "gramian"),
    "hankel_singular_values": ("gramians", "hankel_singular_values"),
    "kernel_operator": ("operators", "kernel_operator"),
}
_SUBMODULES = (
    "backend",
    "densities",
    "distances",
    "gramians",
    "krylov",
    "operators",
    "plot",
    "probes",
    "quadrature",
    "results",
    "stochtrace",
    "testing",
    "validation",
)

__all__ = [
    "ConvergenceWarning",
    "EigResult",
    "Estimate",
    "LanczosResult",
    "NonFiniteError",
    "Operator",
    "SpectralDensity",
    "as_operator",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'spectra' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBMODULES])
