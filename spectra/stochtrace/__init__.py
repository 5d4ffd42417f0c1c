"""Stochastic trace and diagonal estimation from products with an operator.

:func:`trace` (Girard-Hutchinson, Hutch++, XTrace, XNysTrace) and :func:`diagonal`
(Hutchinson, XDiag), in :mod:`spectra.stochtrace.estimators`; the shared context and
Hutchinson's estimator in :mod:`spectra.stochtrace.core`, adaptive Hutch++ in
:mod:`spectra.stochtrace.hutchpp`, the exchangeable X-methods in
:mod:`spectra.stochtrace.exchangeable` on the sketch of :mod:`spectra.stochtrace.sketch`.
The estimators are described on :doc:`/theory/trace_estimators`.
"""

from .estimators import DEFAULT_PROBES, DIAGONAL_METHODS, TRACE_METHODS, diagonal, trace

__all__ = ["DEFAULT_PROBES", "DIAGONAL_METHODS", "TRACE_METHODS", "diagonal", "trace"]
