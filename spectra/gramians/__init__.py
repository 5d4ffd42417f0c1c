"""Gramians of linear systems and Hankel singular values, from products and solves.

:func:`gramian` returns a controllability or observability Gramian as a low-rank factor
(Krylov projection, low-rank ADI or a dense solve) and :func:`hankel_singular_values`
the Hankel singular values with the balanced-truncation bounds, both in
:mod:`spectra.gramians.api`; the equation, stability screens and factors live in
:mod:`spectra.gramians.equation`, block Arnoldi and the Galerkin projection in
:mod:`spectra.gramians.krylov`, low-rank ADI and its shifts in
:mod:`spectra.gramians.adi`. The methods are described on :doc:`/theory/gramians`.
"""

from .api import KINDS, GramianResult, HankelResult, gramian, hankel_singular_values

__all__ = ["KINDS", "GramianResult", "HankelResult", "gramian", "hankel_singular_values"]
