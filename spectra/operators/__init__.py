"""Operators: the protocol every estimator takes, and kernel matrices that are never formed.

:class:`Operator` and :func:`as_operator` (:mod:`spectra.operators.base`) wrap anything
that multiplies a vector; :func:`kernel_operator` (:mod:`spectra.operators.kernels`)
builds implicit kernel matrices :math:`K(X, X) + sI`.
"""

from .base import (
    Operator,
    as_operator,
    dense_matrix,
    require_square,
    require_symmetric,
    wrapped_matrix,
)
from .kernels import KERNELS, KernelOperator, kernel_operator, median_bandwidth

__all__ = [
    "KERNELS",
    "KernelOperator",
    "Operator",
    "as_operator",
    "dense_matrix",
    "kernel_operator",
    "median_bandwidth",
    "require_square",
    "require_symmetric",
    "wrapped_matrix",
]
