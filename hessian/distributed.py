"""Data-parallel curvature products: :mod:`hessian.curvature.distributed` at its old path.

Kept so that ``import hessian.distributed`` and ``hessian.distributed.top_eigenvalues``
keep working; every name is the one defined in :mod:`hessian.curvature.distributed`.
"""

from __future__ import annotations

from .curvature.distributed import (
    DistributedOperator,
    density,
    diagonal,
    distributed_operator,
    shared_seed,
    top_eigenvalues,
    trace,
)

__all__ = [
    "DistributedOperator",
    "density",
    "diagonal",
    "distributed_operator",
    "shared_seed",
    "top_eigenvalues",
    "trace",
]
