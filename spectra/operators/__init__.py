"""Operators: the protocol every estimator takes, and kernel matrices that are never formed.

:class:`Operator` and :func:`as_operator` (:mod:`spectra.operators.base`) wrap anything
that multiplies a vector; :func:`kernel_operator` (:mod:`spectra.operators.kernels`)
builds implicit kernel matrices :math:`K(X, X) + sI`; :mod:`spectra.operators.algebra`
combines operators (``a * op``, ``op1 + op2``, ``op + s * identity(n)``).
"""

from ._inputs import is_sparse
from .algebra import ScaledIdentity, identity
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
    "ScaledIdentity",
    "as_operator",
    "dense_matrix",
    "identity",
    "is_sparse",
    "kernel_operator",
    "median_bandwidth",
    "require_square",
    "require_symmetric",
    "wrapped_matrix",
]
