"""hessian: curvature spectra of PyTorch models, matrix-free.

Curvature operators of a model's loss over its data -- the Hessian, the generalised
Gauss-Newton matrix, the empirical and Monte-Carlo Fisher, the neural tangent kernel
and the parameter-space Jacobian Gram -- as :class:`spectra.Operator` objects, so
every :mod:`spectra` estimator (``eigsh``, ``trace``, ``diagonal``, ``density``,
``lanczos``) runs on them unchanged. Models are modules or functions of a parameter
dict; batches are ``(inputs, targets)`` pairs, mappings or dataclasses of keyword inputs
(transformers models included, with :class:`LanguageModelLoss` for their tokens), read
by a documented rule; a fixed batch's first-order graph is built once and reused; data
loaders are averaged with exact weights (samples, or counted examples). One-call helpers
(:func:`top_eigenvalues`, :func:`trace`, :func:`diagonal`, :func:`density`) cover the
common cases, per layer too; :func:`extrapolated_density` gives the full-data GGN /
Fisher / Jacobian-Gram spectrum from data subsamples by free decompression; and
:mod:`hessian.distributed` runs the same products data-parallel over ``torch.distributed``.

Two rooms: :mod:`hessian.curvature` holds the operators and everything they need;
:mod:`hessian.training` the training-time tools built on them (:class:`SNRAdamW`,
:class:`SpectralLR`, :class:`KernelPruner`, :class:`SpectrumMonitor`, the trajectory and
dissipation Gramians) and ``hessian.plot`` (loaded on first use) draws training
histories. Every public name is importable from ``hessian`` itself.

>>> import torch, hessian
>>> g = torch.Generator().manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
>>> X, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
>>> H = hessian.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y))
>>> H.shape
(67, 67)
"""

from __future__ import annotations

import importlib
from typing import Any

from . import distributed
from . import optim as optim  # the old path of hessian.training.optim
from .curvature import (
    CurvatureOperator,
    FisherOperator,
    GGNOperator,
    HessianOperator,
    JacobianGramOperator,
    LanguageModelLoss,
    NTKOperator,
    curvature_operator,
    data_blocks,
    density,
    diagonal,
    extrapolated_density,
    per_layer,
    top_eigenvalues,
    trace,
)
from .training import (
    DissipationGramian,
    KernelPruner,
    SNRAdamW,
    SpectralLR,
    SpectrumHistory,
    SpectrumMonitor,
    TrajectoryGramian,
)

__all__ = [
    "CurvatureOperator",
    "DissipationGramian",
    "FisherOperator",
    "GGNOperator",
    "HessianOperator",
    "JacobianGramOperator",
    "KernelPruner",
    "LanguageModelLoss",
    "NTKOperator",
    "SNRAdamW",
    "SpectralLR",
    "SpectrumHistory",
    "SpectrumMonitor",
    "TrajectoryGramian",
    "curvature",
    "curvature_operator",
    "data_blocks",
    "distributed",
    "density",
    "diagonal",
    "extrapolated_density",
    "per_layer",
    "top_eigenvalues",
    "trace",
    "training",
]


def __getattr__(name: str) -> Any:
    """Load ``hessian.plot`` (:mod:`hessian.training.plot`) on first use."""
    if name == "plot":
        module = importlib.import_module(".training.plot", __name__)
        globals()["plot"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
