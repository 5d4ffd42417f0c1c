"""freedecomp: free decompression of sampled principal submatrices.

From the eigenvalues of an ``n x n`` principal submatrix (or several, or a block
sampler) estimate the spectral law of the ``N x N`` matrix: ``decompress`` fits a model
of the sample's law (rational R-transform, algebraic spectral curve, Chebyshev density,
or the deformed Marchenko-Pastur law for Gram matrices), chosen by validation, and
decompresses it exactly. ``freedecomp.laws`` holds closed-form laws with their exact
decompression maps; ``freedecomp.plot`` draws results (matplotlib loaded lazily).

Importing this package loads neither Numba, matplotlib nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Decompression", "decompress", "laws", "plot"]

_LAZY = {"decompress": ("decompress", "decompress"), "Decompression": ("result", "Decompression")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    if name in ("laws", "plot", "models", "deformed"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'freedecomp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
