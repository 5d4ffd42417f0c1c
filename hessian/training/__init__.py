"""Training-time tools built on the curvature operators.

SNR-gated AdamW and its step functions (:mod:`~hessian.training.optim`), the spectral
learning-rate cap (:mod:`~hessian.training.schedule`), curvature spectra recorded during
training with their on-disk history (:mod:`~hessian.training.monitor`), the trajectory
and dissipation Gramians (:mod:`~hessian.training.trajectory`,
:mod:`~hessian.training.dissipation`), pruning by the Gramian's kernel
(:mod:`~hessian.training.prune`) and plots of training histories
(:mod:`~hessian.training.plot`, imported on use).
"""

from __future__ import annotations

from .dissipation import DissipationGramian, DissipationSpectrum
from .monitor import SpectrumHistory, SpectrumMonitor, SpectrumRecord
from .optim import SNRAdamW
from .prune import KernelPruner, PruneReport
from .schedule import CurvatureRecord, SpectralLR
from .trajectory import GramianSpectrum, TrajectoryGramian

__all__ = [
    "CurvatureRecord",
    "DissipationGramian",
    "DissipationSpectrum",
    "GramianSpectrum",
    "KernelPruner",
    "PruneReport",
    "SNRAdamW",
    "SpectralLR",
    "SpectrumHistory",
    "SpectrumMonitor",
    "SpectrumRecord",
    "TrajectoryGramian",
]
