"""Curvature operators of PyTorch models and the one-call spectra built on them.

The Hessian, the generalised Gauss-Newton matrix, the empirical and Monte-Carlo Fisher,
the parameter-space Jacobian Gram and the neural tangent kernel of a model's loss over
its data, as :class:`spectra.Operator` objects (:mod:`~hessian.curvature.operators`),
for modules and functional models, batches as tuples, mappings or dataclasses, and the
token loss of language models (:mod:`~hessian.curvature.losses`);
the model side they share (:mod:`~hessian.curvature.model`); one-call top eigenvalues,
trace, diagonal and density (:mod:`~hessian.curvature.spectrum`); the full-data spectrum
from data subsamples by free decompression (:mod:`~hessian.curvature.subsample`); and the
same products
summed over ``torch.distributed`` ranks (:mod:`~hessian.curvature.distributed`).

Nothing here imports :mod:`hessian.training`; the training-time tools build on this.
"""

from __future__ import annotations

from . import distributed as distributed
from .losses import LanguageModelLoss
from .model import ModelView, check_eval_mode, eval_mode
from .operators import (
    CurvatureOperator,
    FisherOperator,
    GGNOperator,
    HessianOperator,
    JacobianGramOperator,
    NTKOperator,
    per_layer,
)
from .spectrum import curvature_operator, density, diagonal, top_eigenvalues, trace
from .subsample import data_blocks, extrapolated_density

__all__ = [
    "CurvatureOperator",
    "FisherOperator",
    "GGNOperator",
    "HessianOperator",
    "JacobianGramOperator",
    "LanguageModelLoss",
    "ModelView",
    "NTKOperator",
    "check_eval_mode",
    "curvature_operator",
    "data_blocks",
    "density",
    "diagonal",
    "eval_mode",
    "extrapolated_density",
    "per_layer",
    "top_eigenvalues",
    "trace",
]
