r"""Spectral learning rate: cap the step size by the measured curvature.

Gradient descent on a quadratic with Hessian :math:`H` is stable iff
:math:`\eta < 2/\lambda_{\max}(H)`; heavy-ball momentum :math:`\mu` moves the edge to
:math:`(2+2\mu)/\lambda_{\max}`, and Adam with :math:`\beta_1` (its preconditioner
:math:`D = \sqrt{\hat v} + \epsilon` held fixed) to
:math:`(2+2\beta_1)/((1-\beta_1)\lambda_{\max}(D^{-1}H))`, the "adaptive edge of
stability" at which Adam's preconditioned sharpness equilibrates [2]_.
:class:`SpectralLR` measures that sharpness every ``every`` steps and sets

.. math::
    \eta_t = \min\bigl(\text{schedule}(t),\ c \cdot \text{threshold}(\bar\lambda)\bigr),

LeCun, Simard and Pearlmutter's on-line rule [1]_ with a modern estimator: a few
Lanczos steps (full reorthogonalisation) on Hessian-vector products of a fixed
curvature batch, warm-started from the previous top Ritz vector, so that a stable
top direction converges in one or two products. For Adam-type optimizers the
operator is the symmetric :math:`D^{-1/2} H D^{-1/2}` (similar to :math:`D^{-1} H`),
with :math:`D` read from the optimizer's state. The top Ritz value :math:`\theta_1` is
a lower bound of :math:`\lambda_{\max}`; :math:`\theta_1 + |\beta_k s_{k1}|` (the Ritz
residual) bounds the distance to the nearest eigenvalue and is kept as the
a-posteriori upper estimate. The estimate is smoothed as an EMA of
:math:`\log\theta_1` and each change of the curvature cap is clipped to a factor
``max_change``.

Caveats [3]_: tying :math:`\eta` to :math:`\lambda` is a feedback loop (progressive
sharpening keeps raising :math:`\lambda`, so the cap keeps falling); minibatch
sharpness exceeds full-batch sharpness; near the edge :math:`\lambda` oscillates,
hence the smoothing and the cap by the base schedule. Measured on a digits MLP with
SGD and momentum (``docs/benchmarks_optim.md``): base rates of 1 and 3, at which
constant rates diverge, stayed stable under the cap, but ended at a higher training
loss than the best constant rate of the grid (0.3); with the base at that rate the cap
never bound. It is a guard against too-large rates, not a replacement for tuning.

References
----------
.. [1] Y. LeCun, P. Y. Simard, B. Pearlmutter, "Automatic learning rate maximization
   by on-line estimation of the Hessian's eigenvectors", NIPS 1993.
.. [2] J. M. Cohen, B. Ghorbani, S. Krishnan et al., "Adaptive gradient methods at the
   edge of stability", arXiv:2207.14484 (2022).
.. [3] J. M. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar, "Gradient descent on
   neural networks typically occurs at the edge of stability", ICLR 2021.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import spectra
from spectra.probes import as_rng, draw
from spectra.results import NonFiniteError
from spectra.validation import check_float, check_int

from ..curvature.model import eval_mode
from ..curvature.operators import HessianOperator

__all__ = ["CurvatureRecord", "SpectralLR"]


@dataclass(frozen=True)
class CurvatureRecord:
    r"""One curvature measurement of :class:`SpectralLR`.

    Attributes
    ----------
    step : int
        Scheduler step at which it was made.
    ritz : float
        Top Ritz value :math:`\theta_1` (a lower bound of the sharpness).
    upper : float
        :math:`\theta_1 + |\beta_k s_{k1}|`: the Ritz residual bound.
    smoothed : float
        The smoothed sharpness used for the cap (``nan`` until a positive value was
        seen).
    cap : float
        The curvature cap on the learning rate after clipping (``inf`` when the
        measured curvature is not positive).
    lr : float
        The learning rate of the first parameter group after this step.
    num_matvecs : int
        Hessian-vector products spent.
    """

    step: int
    ritz: float
    upper: float
    smoothed: float
    cap: float
    lr: float
    num_matvecs: int


def _preconditioned(optimizer: torch.optim.Optimizer, preconditioned: bool | None) -> bool:
    """Whether to measure the Adam-preconditioned curvature; refuse unknown optimizers."""
    g = optimizer.param_groups[0]
    adam = "betas" in g and "momentum" not in g
    if not adam and not isinstance(optimizer, torch.optim.SGD):
        raise TypeError("SpectralLR knows the stability thresholds of SGD and of Adam-type "
                        "optimizers (with betas and exp_avg_sq state), got "
                        f"{type(optimizer).__name__}")
    out = adam if preconditioned is None else bool(preconditioned)
    if out and not adam:
        raise ValueError("preconditioned=True needs an Adam-type optimizer (with betas "
                         f"and exp_avg_sq state), got {type(optimizer).__name__}")
    return out



class SpectralLR:
    r"""Learning-rate scheduler that caps the rate at a fraction of the stability edge.

    Call :meth:`step` once after every ``optimizer.step()``, as for a torch scheduler.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        SGD (with or without heavy-ball momentum) or an Adam-type optimizer (one with
        ``betas`` and ``exp_avg_sq`` state: ``Adam``, ``AdamW``, :class:`SNRAdamW`).
    model : torch.nn.Module
        The model the optimizer trains. Curvature is measured in eval mode (dropout off,
        BatchNorm on running statistics); the training flags are restored afterwards.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar tensor``.
    data : tuple or iterable
        The fixed curvature batch ``(inputs, targets)`` (or a fixed list of batches),
        typically one to four training batches.
    every : int
        Measure every ``every`` scheduler steps (and at step 0 when possible).
    factor : float
        :math:`c \in (0, 1]`, the fraction of the stability threshold; 0.5 gives
        :math:`1/\lambda` for SGD (LeCun's optimum along the top direction).
    num_steps : int
        Lanczos steps per measurement (clipped to the number of parameters).
    base : None, callable or LR scheduler
        The base schedule: ``None`` keeps each group's initial rate; a callable
        ``step -> multiplier`` of the initial rates (like ``LambdaLR``); or a torch LR
        scheduler on the same optimizer, which this object then steps (do not step it
        yourself).
    smoothing : float
        EMA weight in ``[0, 1)`` of the previous :math:`\log\bar\lambda` (0: no
        smoothing).
    max_change : float
        Each measurement may change the curvature cap by at most this factor
        (``>= 1``; ``inf`` disables the clipping).
    preconditioned : bool, optional
        Measure :math:`D^{-1/2} H D^{-1/2}` with :math:`D = \sqrt{\hat v}+\epsilon` from
        the optimizer state and use Adam's threshold. Default: for Adam-type
        optimizers. ``False`` uses the raw Hessian and the (heavy-ball) SGD threshold.
    conservative : bool
        Cap with the upper estimate :math:`\theta_1 + |\beta_k s_{k1}|` instead of
        :math:`\theta_1`.
    rng : None, int, numpy Generator or torch Generator
        Draws the first Lanczos start vector (later ones are warm starts).
    **operator_options
        Passed to :class:`hessian.HessianOperator` (``dtype``, ``mode``,
        ``max_probes``...).

    Attributes
    ----------
    history : list of CurvatureRecord
        Every measurement.

    Raises
    ------
    ValueError
        Bad hyperparameters; optimizer groups with different ``betas`` or momentum.
    spectra.results.NonFiniteError
        At a measurement, NaN or Inf in the loss or the curvature products; the message
        names the scheduler step (a ``FloatingPointError`` and a ``ValueError``).

    Examples
    --------
    >>> import torch, hessian
    >>> model = torch.nn.Linear(3, 1)
    >>> X, y = torch.randn(16, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(16, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=10.0)
    >>> sched = hessian.SpectralLR(opt, model, torch.nn.MSELoss(), (X, y), every=10, rng=0)
    >>> sched.get_last_lr()[0] < 10.0  # capped at 0.5 * 2 / lambda_max
    True
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        loss_fn: Callable,
        data: Any,
        *,
        every: int = 100,
        factor: float = 0.5,
        num_steps: int = 10,
        base: Any = None,
        smoothing: float = 0.5,
        max_change: float = 2.0,
        preconditioned: bool | None = None,
        conservative: bool = False,
        rng: Any = None,
        **operator_options: Any,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        every = check_int(every, "every", low=1)
        num_steps = check_int(num_steps, "num_steps", low=1)
        factor = check_float(factor, "factor", low=0.0, high=1.0, low_open=True)
        smoothing = check_float(smoothing, "smoothing", low=0.0, high=1.0, high_open=True)
        max_change = check_float(max_change, "max_change", low=1.0, finite=False,
                                 hint=" (inf: no clipping)")
        if base is not None and not callable(base) and not hasattr(base, "get_last_lr"):
            raise TypeError("base must be None, a callable step -> multiplier or an LR "
                            f"scheduler, got {type(base).__name__}")
        self.optimizer = optimizer
        self.model = model
        self.every, self.factor, self.num_steps = every, float(factor), num_steps
        self.base, self.smoothing, self.max_change = base, float(smoothing), float(max_change)
        self.conservative = bool(conservative)
        self.preconditioned = _preconditioned(optimizer, preconditioned)
        self._threshold_const = self._threshold_constant()
        params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        if not params:
            raise ValueError("the optimizer has no parameter that requires grad")
        with eval_mode(model):
            try:
                self.operator = HessianOperator(model, loss_fn, data, params=params,
                                                **operator_options)
            except FloatingPointError as err:
                raise NonFiniteError(f"SpectralLR: NaN or Inf in the curvature at "
                                     f"scheduler step 0 ({err})") from err
        self._params = params
        self._rng = as_rng(rng)
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_step = 0
        self.history: list[CurvatureRecord] = []
        self._v0: torch.Tensor | None = None
        self._log_lam: float | None = None
        self._cap = math.inf
        self._pending = True
        sched = self._schedule(advance=False)
        self._apply(sched)

    # ------------------------------------------------------------------ schedule
    def _threshold_constant(self) -> float:
        groups = self.optimizer.param_groups
        if self.preconditioned:
            b1 = {float(g["betas"][0]) for g in groups}
            if len(b1) != 1:
                raise ValueError(f"all parameter groups must share beta1, got {sorted(b1)}")
            (beta1,) = b1
            return (2.0 + 2.0 * beta1) / (1.0 - beta1)
        mom = {(float(g.get("momentum", 0.0)), float(g.get("dampening", 0.0)),
                bool(g.get("nesterov", False))) for g in groups}
        if len(mom) != 1:
            raise ValueError("all parameter groups must share momentum, dampening and "
                             f"nesterov, got {sorted(mom)}")
        ((mu, damp, nesterov),) = mom
        if nesterov:
            raise ValueError("SpectralLR supports plain and heavy-ball SGD, not Nesterov "
                             "momentum (no threshold formula implemented)")
        return (2.0 + 2.0 * mu) / (1.0 - damp) if mu > 0 else 2.0

    def threshold(self, lam: float) -> float:
        r"""Stability threshold of the learning rate for sharpness ``lam``.

        :math:`2/\lambda` for SGD, :math:`(2+2\mu)/((1-d)\lambda)` with heavy-ball
        momentum :math:`\mu` and dampening :math:`d`,
        :math:`(2+2\beta_1)/((1-\beta_1)\lambda)` for Adam; ``inf`` for
        :math:`\lambda \le 0`.
        """
        return self._threshold_const / lam if lam > 0 else math.inf

    def _schedule(self, advance: bool) -> list[float]:
        groups = self.optimizer.param_groups
        if self.base is None:
            return list(self.base_lrs)
        if hasattr(self.base, "get_last_lr"):
            if advance:  # hand the scheduler its own (uncapped) rates back, then step it
                for g, lr in zip(groups, self.base.get_last_lr(), strict=True):
                    g["lr"] = lr
                self.base.step()
            return [float(g["lr"]) for g in groups] if advance else \
                [float(x) for x in self.base.get_last_lr()]
        mult = float(self.base(self.last_step))
        if not math.isfinite(mult) or mult < 0:
            raise ValueError(f"the base schedule returned {mult} at step {self.last_step}; "
                             "it must be a finite non-negative multiplier")
        return [lr * mult for lr in self.base_lrs]

    def _apply(self, sched: list[float]) -> None:
        if self._pending and self._can_measure():
            self._measure(sched)
        for g, s in zip(self.optimizer.param_groups, sched, strict=True):
            g["lr"] = min(s, self._cap)
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        if self.history and self.history[-1].step == self.last_step:
            rec = self.history[-1]
            self.history[-1] = CurvatureRecord(**{**asdict(rec), "lr": self._last_lr[0]})

    def step(self) -> None:
        """Advance one step: step the base schedule, measure when due, set the rates."""
        self.last_step += 1
        if self.last_step % self.every == 0:
            self._pending = True
        self._apply(self._schedule(advance=True))

    def get_last_lr(self) -> list[float]:
        """The learning rates set at the last step, one per parameter group."""
        return list(self._last_lr)

    # ------------------------------------------------------------------ measurement
    def _can_measure(self) -> bool:
        if not self.preconditioned:
            return True
        return all("exp_avg_sq" in self.optimizer.state.get(p, {}) for p in self._params)

    def _precond_scale(self) -> torch.Tensor:
        """:math:`D^{-1/2}` as one flat vector in the operator's order and dtype."""
        parts = []
        for g in self.optimizer.param_groups:
            beta2, eps = float(g["betas"][1]), float(g["eps"])
            for p in g["params"]:
                if not p.requires_grad:
                    continue
                st = self.optimizer.state[p]
                v = st["max_exp_avg_sq"] if g.get("amsgrad") and "max_exp_avg_sq" in st \
                    else st["exp_avg_sq"]
                t = float(st["step"])
                d = (v / (1.0 - beta2**t)).sqrt().add_(eps)
                parts.append(d.reshape(-1))
        flat = torch.cat(parts).to(self.operator.dtype)
        return flat.rsqrt()

    def _operator(self) -> spectra.Operator:
        H = self.operator
        H.free()  # the parameters moved: never reuse a graph built before the last step
        if not self.preconditioned:
            return H
        s = self._precond_scale()

        def mm(V: torch.Tensor) -> torch.Tensor:
            return s[:, None] * H.matmat(s[:, None] * V)

        return spectra.Operator.from_matvec(lambda v: mm(v[:, None])[:, 0], H.shape,
                                            dtype=H.dtype, device=H.device, symmetric=True,
                                            matmat=mm)

    def _measure(self, sched: list[float]) -> None:
        self._pending = False
        n = self.operator.shape[0]
        k = min(self.num_steps, n)
        with eval_mode(self.model):
            op = self._operator()
            v0 = self._v0
            if v0 is None:
                v0 = draw("gaussian", n, 1, like=self.operator, rng=self._rng)[:, 0]
            try:
                res = spectra.lanczos(op, k, v0=v0, reorth="full")
            except (FloatingPointError, ValueError) as err:
                if not isinstance(err, FloatingPointError) and "NaN" not in str(err):
                    raise
                raise NonFiniteError(
                    f"SpectralLR: NaN or Inf while measuring the curvature at scheduler step "
                    f"{self.last_step} ({err}); the model or the loss diverged") from err
            finally:
                self.operator.free()
        from scipy.linalg import eigh_tridiagonal

        s = int(res.steps[0])
        a, b = res.alpha[0, :s], res.beta[0, :s]
        if s == 1:
            theta, S = a.copy(), np.ones((1, 1))
        else:
            theta, S = eigh_tridiagonal(a, b[: s - 1])
        top = float(theta[-1])
        upper = top + abs(float(b[s - 1]) * float(S[-1, -1]))
        if not (math.isfinite(top) and math.isfinite(upper)):
            raise NonFiniteError(f"SpectralLR: non-finite Ritz value {top} at scheduler "
                                 f"step {self.last_step}")
        coef = torch.as_tensor(S[:, -1], dtype=res.basis.dtype, device=res.basis.device)
        x = coef @ res.basis[0, :s, :]
        self._v0 = x / torch.linalg.vector_norm(x)
        lam = upper if self.conservative else top
        if lam > 0:
            log_lam = math.log(lam)
            if self._log_lam is None:
                self._log_lam = log_lam
            else:
                self._log_lam = self.smoothing * self._log_lam + (1 - self.smoothing) * log_lam
        smoothed = math.exp(self._log_lam) if self._log_lam is not None else math.nan
        cap = self.factor * self.threshold(smoothed) if self._log_lam is not None else math.inf
        if math.isfinite(self._cap) and math.isfinite(cap):
            cap = min(max(cap, self._cap / self.max_change), self._cap * self.max_change)
        self._cap = cap
        self.history.append(CurvatureRecord(
            step=self.last_step, ritz=top, upper=upper, smoothed=smoothed, cap=cap,
            lr=min(sched[0], cap), num_matvecs=int(res.num_matvecs),
        ))

    def measure(self) -> CurvatureRecord:
        """Measure the curvature now (outside the ``every`` rhythm) and apply the cap.

        Returns
        -------
        CurvatureRecord
        """
        if not self._can_measure():
            raise RuntimeError("the Adam preconditioner is not known before the optimizer's "
                               "first step")
        self._pending = True
        self._apply(self._schedule(advance=False))
        return self.history[-1]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Scheduler state (the warm-start vector included; the model is not)."""
        return {
            "last_step": self.last_step, "base_lrs": list(self.base_lrs),
            "log_lam": self._log_lam, "cap": self._cap, "pending": self._pending,
            "v0": None if self._v0 is None else self._v0.detach().cpu().clone(),
            "history": [asdict(r) for r in self.history], "last_lr": list(self._last_lr),
            "base": self.base.state_dict() if hasattr(self.base, "state_dict") else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.last_step = int(state["last_step"])
        self.base_lrs = list(state["base_lrs"])
        self._log_lam = state["log_lam"]
        self._cap = float(state["cap"])
        self._pending = bool(state["pending"])
        v0 = state["v0"]
        self._v0 = None if v0 is None else v0.to(device=self.operator.device,
                                                 dtype=self.operator.dtype)
        self.history = [CurvatureRecord(**r) for r in state["history"]]
        self._last_lr = list(state["last_lr"])
        if state.get("base") is not None and hasattr(self.base, "load_state_dict"):
            self.base.load_state_dict(state["base"])
        for g, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            g["lr"] = lr
