"""hessian: curvature spectra of PyTorch models, matrix-free.

Curvature operators of a model's loss over its data -- the Hessian, the generalised
Gauss-Newton matrix, the empirical and Monte-Carlo Fisher, the neural tangent kernel
and the parameter-space Jacobian Gram -- as :class:`spectra.Operator` objects, so
every :mod:`spectra` estimator (``eigsh``, ``trace``, ``diagonal``, ``density``,
``lanczos``) runs on them unchanged. Products of many probes go through one batched
backward pass; a fixed batch's first-order graph is built once and reused; data
loaders are averaged with exact batch-size weights. One-call helpers
(:func:`top_eigenvalues`, :func:`trace`, :func:`diagonal`, :func:`density`) cover the
common cases, per layer too, and :mod:`hessian.distributed` runs the same products
data-parallel over ``torch.distributed``.

>>> import torch, hessian
>>> g = torch.Generator().manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
>>> X, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
>>> H = hessian.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y))
>>> H.shape
(67, 67)
"""

from __future__ import annotations

from . import distributed
from .dissipation import DissipationGramian
from .monitor import SpectrumHistory, SpectrumMonitor
from .operators import (
    CurvatureOperator,
    FisherOperator,
    GGNOperator,
    HessianOperator,
    JacobianGramOperator,
    NTKOperator,
    per_layer,
)
from .optim import SNRAdamW
from .prune import KernelPruner
from .schedule import SpectralLR
from .spectrum import curvature_operator, density, diagonal, top_eigenvalues, trace
from .trajectory import TrajectoryGramian

__all__ = [
    "CurvatureOperator",
    "DissipationGramian",
    "FisherOperator",
    "GGNOperator",
    "HessianOperator",
    "JacobianGramOperator",
    "KernelPruner",
    "NTKOperator",
    "SNRAdamW",
    "SpectralLR",
    "SpectrumHistory",
    "SpectrumMonitor",
    "TrajectoryGramian",
    "curvature_operator",
    "distributed",
    "density",
    "diagonal",
    "per_layer",
    "top_eigenvalues",
    "trace",
]
