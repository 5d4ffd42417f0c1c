"""Closed-form spectral laws and their exact free-decompression maps.

:mod:`freedecomp.laws.classical` holds the laws whose Stieltjes transform solves a
quadratic (Wigner, Marchenko-Pastur, Kesten-McKay, Wachter, free Meixner) with both
sheets, atoms, samplers and the exact parameter map of free decompression;
:mod:`freedecomp.laws.deformed` the deformed Marchenko-Pastur law of Gram matrices
(physical sheet, solved numerically). Every name is available as ``freedecomp.laws.X``.
"""

from __future__ import annotations

from .classical import (
    FreeMeixner,
    KestenMcKay,
    MarchenkoPastur,
    QuadraticLaw,
    Wachter,
    Wigner,
    haar_orthogonal,
    wishart,
)
from .deformed import DeformedMarchenkoPastur

__all__ = [
    "DeformedMarchenkoPastur",
    "FreeMeixner",
    "KestenMcKay",
    "MarchenkoPastur",
    "QuadraticLaw",
    "Wachter",
    "Wigner",
    "haar_orthogonal",
    "wishart",
]
