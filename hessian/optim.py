"""SNR-gated AdamW: :mod:`hessian.training.optim` at its old path.

Kept so that ``from hessian.optim import SNRAdamW`` keeps working; every name is the
one defined in :mod:`hessian.training.optim`.
"""

from __future__ import annotations

from .training.optim import (
    GATES,
    SNRAdamW,
    finite_alpha,
    leave_one_out_signal,
    momentum_noise,
    snr_adamw_foreach,
    snr_adamw_single,
)

__all__ = [
    "GATES",
    "SNRAdamW",
    "finite_alpha",
    "leave_one_out_signal",
    "momentum_noise",
    "snr_adamw_foreach",
    "snr_adamw_single",
]
