"""spectra: matrix-free spectral estimation on any operator.

Estimators take an :class:`Operator` (or a numpy array, scipy sparse matrix or
``LinearOperator``, torch tensor) and a budget of products ``num_matvecs``, and
return frozen result objects with diagnostics.

>>> import numpy as np, spectra
>>> A = spectra.testing.matrix_from_eigenvalues(np.linspace(1, 2, 50), rng=0)
>>> round(float(spectra.trace(A, 50, rng=0).value), 6)
75.0
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .operators import Operator, as_operator
from .results import (
    ConvergenceWarning,
    EigResult,
    Estimate,
    LanczosResult,
    SpectralDensity,
)

__version__ = "0.1.0"

# Estimators and optional submodules load on first use, so that ``import spectra``
# stays fast and pulls neither scipy.sparse, Numba, torch nor matplotlib.
_LAZY = {
    "lanczos": ("lanczos", "lanczos"),
    "eigsh": ("eigs", "eigsh"),
    "trace": ("trace", "trace"),
    "diagonal": ("trace", "diagonal"),
    "trace_function": ("quadrature", "trace_function"),
    "logdet": ("quadrature", "logdet"),
    "density": ("density", "density"),
    "gramian": ("gramians", "gramian"),
    "hankel_singular_values": ("gramians", "hankel_singular_values"),
    "kernel_operator": ("kernels_ops", "kernel_operator"),
}
_SUBMODULES = ("plot", "testing", "probes", "quadrature", "eigs", "cli")

__all__ = [
    "ConvergenceWarning",
    "EigResult",
    "Estimate",
    "LanczosResult",
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


class _Package(types.ModuleType):
    """Keeps ``spectra.trace`` (etc.) the function when its submodule gets imported.

    Importing ``spectra.trace`` binds the submodule as an attribute of the package,
    which would shadow the lazily exported function of the same name.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
