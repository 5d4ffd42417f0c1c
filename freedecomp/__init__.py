"""freedecomp: free decompression of sampled principal submatrices.

From the eigenvalues of an ``n x n`` principal submatrix (or several, or a block
sampler) estimate the spectral law of the ``N x N`` matrix: :func:`decompress` fits a
model of the sample's law (rational R-transform, algebraic spectral curve, Chebyshev
density, or the deformed Marchenko-Pastur law for Gram matrices), chosen by validation,
and decompresses it exactly.

- :mod:`freedecomp.laws`: closed-form laws with their exact decompression maps;
- :mod:`freedecomp.models`: the models fitted to a sample (and the population fit);
- :mod:`freedecomp.samplers`: what a sample can be, and its sub-samples (and connected
  patches of sparse graphs);
- :mod:`freedecomp.checks`: checks that a block can be decompressed (sparse-graph
  subsets, atoms);
- :mod:`freedecomp.outliers`: exact zeros and outliers of a block, the outlier map;
- :mod:`freedecomp.candidates`: the candidates (models and baselines) and validation;
- :mod:`freedecomp.evaluation`: decompressed laws on grids, the validation score;
- :mod:`freedecomp.invariants`: the exact checks on a result;
- :mod:`freedecomp.gram`: Gram matrices sampled by rows (the deformed paths);
- :mod:`freedecomp.driver`: :func:`decompress`;
- :mod:`freedecomp.result`: :class:`Decompression`, its typed diagnostics and
  :class:`FreeDecompressionWarning`;
- :mod:`freedecomp.plot`: pictures of results (matplotlib loaded lazily).

Importing this package loads neither Numba, matplotlib nor torch: every name is
loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Decompression", "FreeDecompressionWarning", "candidates", "checks", "decompress",
           "evaluation", "gram", "invariants", "laws", "models", "outliers", "plot",
           "samplers"]

_LAZY = {"decompress": ("driver", "decompress"), "Decompression": ("result", "Decompression"),
         "FreeDecompressionWarning": ("result", "FreeDecompressionWarning")}
_SUBMODULES = ("candidates", "checks", "driver", "evaluation", "gram", "invariants", "laws",
               "models", "outliers", "plot", "result", "samplers")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'freedecomp' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
