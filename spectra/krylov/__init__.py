"""Krylov methods on symmetric operators: Lanczos tridiagonalisation and eigenpairs.

:func:`lanczos` (:mod:`spectra.krylov.lanczos`) runs batched Lanczos from one or several
start vectors, the engine of stochastic Lanczos quadrature; :func:`eigsh`
(:mod:`spectra.krylov.eigsh`) computes extremal eigenpairs by thick-restart Lanczos
(single-vector or block). The method is described on :doc:`/theory/lanczos`.
"""

from .eigsh import WHICH, eigsh
from .lanczos import check_steps, lanczos

__all__ = ["WHICH", "check_steps", "eigsh", "lanczos"]
