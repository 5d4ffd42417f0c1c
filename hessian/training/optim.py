r"""SNR-gated AdamW: Adam's step, passed through a per-coordinate signal-to-noise gate.

:class:`SNRAdamW` is AdamW plus one exponential moving average per parameter of the
centred gradient variance. With the minibatch gradient :math:`g_t`, Adam's moments
:math:`m_t, v_t` and :math:`\hat m = m_t/(1-\beta_1^t)`, :math:`\hat v = v_t/(1-\beta_2^t)`,

.. math::
    \delta_t = g_t - \hat m_{t-1}, \qquad
    s_t = \rho\, s_{t-1} + (1-\rho)\, \delta_t^2, \qquad
    \hat s_t = \frac{s_t}{1-\rho^{t-1}} \quad (t \ge 2).

With a fresh batch every step, :math:`\hat s` estimates :math:`\mathrm{Var}(g_t) =
\Sigma/b = \mathbb E[\sigma_B^2]/(b-1)`: exactly the leave-one-out penalty of the
U-statistic :math:`\frac{1}{b(b-1)}\sum_{i\ne j} g_i g_j = \bar g^2 - \sigma_B^2/(b-1)`,
the unbiased estimate of the squared population gradient [1]_. (The deviation
from the previous mean also carries the mean's own noise, a factor
:math:`1 + \rho(\beta_1, t-1) \approx 1.05`; it makes the gate slightly conservative.)

The gate compares the signal :math:`\hat m^2` with the noise
:math:`\kappa \hat s`, where

.. math::
    \kappa = \tau \bigl(\alpha + [\text{momentum\_correction}]\,\rho(\beta_1, t)\bigr),
    \qquad \rho(\beta, t) = \frac{(1-\beta)(1+\beta^{t})}{(1+\beta)(1-\beta^{t})},

:math:`\tau` is ``softness``, :math:`\alpha` the leave-one-out multiplier (1 on the
fresh-batch boundary; default 0, see below) and :math:`\rho(\beta_1, t)\,\mathrm{Var}(g)`
the residual noise variance of the momentum average (M-SVAG, [2]_; it tends to
:math:`(1-\beta_1)/(1+\beta_1) \approx 0.053`). With ``alpha=0`` and the momentum
correction the gate asks whether the *momentum* is significant (M-SVAG's variance
adaptation); with ``alpha=1`` whether a *single batch's* gradient is. The momentum
averages about :math:`(1+\beta_1)/(1-\beta_1) \approx 19` batches, so the second test is
about 20 times stricter: on grokking at batch 512 it shut nearly every coordinate
(``docs/benchmarks_optim.md``), hence the default ``alpha=0``. For a fixed training
set of :math:`n` examples drawn in batches of :math:`b`, ``alpha="finite"`` uses
:math:`\alpha = b/(n-b)` (:func:`finite_alpha`): the gate then asks whether the whole
training set's gradient is significant. Per coordinate,
with :math:`x = \hat m^2` and :math:`n = \kappa \hat s`:

============= ==================================================== ======================
gate          :math:`\gamma`                                       character
============= ==================================================== ======================
``"snr"``     :math:`x / (x + n + \epsilon^2)`                     Wiener / M-SVAG factor,
                                                                   never exactly zero
``"soft"``    :math:`\max(0, x - n) / (x + \epsilon^2)`            positive-part
                                                                   James-Stein
``"hard"``    :math:`\mathbf 1[x > n]`                             the bang-bang optimum
                                                                   of the U-statistic
``"sigmoid"`` :math:`\sigma\bigl(\log(x/n) / T\bigr)`              ``T = 1`` is ``"snr"``;
                                                                   ``T -> 0`` is ``"hard"``
============= ==================================================== ======================

``reduction="per_tensor"`` replaces :math:`x, n` by their sums over each tensor and
broadcasts one :math:`\gamma` to it. The update is

.. math::
    \theta \leftarrow \theta - \eta\lambda\, d \odot \theta
    - \eta\, \gamma \odot \hat m / (\sqrt{\hat v} + \epsilon),

with :math:`d = 1` (``gate_weight_decay=False``: decoupled decay acting on every
coordinate, as on :doc:`/theory/optimizer`) or :math:`d = \gamma` (``True``: a coordinate whose
update is gated off is neither moved nor decayed). During the first ``warmup``
steps the gate is held open (:math:`\gamma = 1`); with ``gate=None`` the optimizer is
``torch.optim.AdamW`` operation for operation, so it reproduces it bit for bit.

Two implementations share every formula: :func:`snr_adamw_single` (a loop over
tensors) and :func:`snr_adamw_foreach` (``torch._foreach_*`` multi-tensor kernels,
one launch per operation for all tensors of a device and dtype: the fast path on
GPUs). Both follow the operation order of torch's AdamW of the same kind.

References
----------
.. [1] E. Litman and G. Guo, "A theory of generalization in deep learning",
   arXiv:2605.01172 (2026); the leave-one-out reading of its gate is derived on
   :doc:`/theory/optimizer`.
.. [2] L. Balles and P. Hennig, "Dissecting Adam: the sign, magnitude and variance of
   stochastic gradients", ICML 2018.
.. [3] I. Loshchilov and F. Hutter, "Decoupled weight decay regularization", ICLR 2019.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from spectra.validation import check_bool, check_choice, check_float, check_int

from ._snr_step import momentum_noise, snr_adamw_foreach, snr_adamw_single

__all__ = [
    "GATES",
    "SNRAdamW",
    "finite_alpha",
    "leave_one_out_signal",
    "momentum_noise",
    "snr_adamw_foreach",
    "snr_adamw_single",
]

#: Allowed values of ``gate`` (``None`` disables the gate: plain AdamW).
GATES = ("snr", "soft", "hard", "sigmoid")
_REDUCTIONS = (None, "per_tensor")


def leave_one_out_signal(per_example: Tensor) -> Tensor:
    r"""Unbiased estimate of the squared population gradient from one batch.

    For per-example gradients :math:`g_1, \dots, g_b` (first axis) with mean
    :math:`\bar g` and within-batch variance :math:`\sigma_B^2 = \frac1b\sum_i
    (g_i - \bar g)^2`, the U-statistic

    .. math::
        \frac{1}{b(b-1)} \sum_{i \ne j} g_i g_j = \bar g^2 - \frac{\sigma_B^2}{b-1}

    is unbiased for :math:`\mu^2` (elementwise): how much the examples agree beyond each
    one's agreement with itself. The gate of :class:`SNRAdamW` with ``alpha=1`` asks
    whether this is positive, with :math:`\sigma_B^2/(b-1)` replaced by the temporal
    variance of fresh batch means (the same quantity in expectation).

    Parameters
    ----------
    per_example : Tensor
        Shape ``(b, ...)`` with ``b >= 2``.

    Returns
    -------
    Tensor
        Shape ``per_example.shape[1:]``.
    """
    b = per_example.shape[0] if per_example.ndim else 0
    if b < 2:
        raise ValueError(f"need at least 2 per-example gradients on the first axis, got {b}")
    mean = per_example.mean(0)
    var = per_example.var(0, correction=0)
    return mean * mean - var / (b - 1)


def finite_alpha(batch_size: int, num_examples: int) -> float:
    r"""The finite-dataset threshold :math:`\alpha = b/(n-b)` of the gate.

    With minibatches of :math:`b` drawn without replacement from a fixed training set
    of :math:`n` examples (per-example gradient variance :math:`S^2` over the set), the
    batch mean has variance :math:`\frac{S^2}{b}\frac{n-b}{n-1}` across steps, which is
    what :math:`\hat s` estimates, while the leave-one-out penalty of the whole
    training set is :math:`S^2/(n-1)`. Their ratio is :math:`b/(n-b)`: with this
    :math:`\alpha` the gate asks whether the *full training set* carries signal beyond
    each example's agreement with itself (:doc:`/theory/optimizer`, "Finite
    datasets"; Litman and Guo [1]_ give the same threshold).

    Parameters
    ----------
    batch_size : int
        :math:`b`, in ``[1, num_examples - 1]``.
    num_examples : int
        :math:`n \ge 2`, the size of the training set the batches are drawn from.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When ``batch_size >= num_examples`` (a full batch has no sampling noise: the
        threshold is infinite) or out of range.

    References
    ----------
    .. [1] E. Litman and G. Guo, arXiv:2605.01172 (2026).

    Examples
    --------
    >>> round(finite_alpha(512, 2352), 4)
    0.2783
    """
    n = check_int(num_examples, "num_examples", low=2)
    b = check_int(batch_size, "batch_size", low=1)
    if b >= n:
        raise ValueError(
            f"batch_size must be below num_examples for alpha='finite', got batch_size={b}"
            f" and num_examples={n}: a batch of the whole training set has no sampling "
            "noise, the threshold b/(n-b) is infinite; train full-batch with gate=None "
            "(plain AdamW) or pass a numeric alpha")
    return b / (n - b)


def _check_alpha(g: dict) -> None:
    """Validate ``alpha`` with ``num_examples`` and ``batch_size`` (in place)."""
    if isinstance(g["alpha"], str):
        check_choice(g["alpha"], "alpha", ("finite",))
        if g["num_examples"] is None:
            raise ValueError("alpha='finite' needs num_examples=n, the size of the training "
                             "set the minibatches are drawn from (threshold b/(n-b))")
        g["num_examples"] = check_int(g["num_examples"], "num_examples", low=2)
        if g["batch_size"] is not None:
            finite_alpha(g["batch_size"], g["num_examples"])  # refuse b >= n up front
    else:
        check_float(g["alpha"], "alpha", low=0.0, hint=" (or the string 'finite')")
        for name in ("num_examples", "batch_size"):
            if g[name] is not None:
                raise ValueError(f"{name} is used only with alpha='finite'; got {name}="
                                 f"{g[name]!r} with alpha={g['alpha']!r}")


def _all_finite(groups: list[dict]) -> bool:
    """Whether every gradient of ``groups`` is finite (one host synchronisation)."""
    flags = [torch.isfinite(p.grad).all().to("cpu", non_blocking=True)
             for g in groups for p in g["params"] if p.grad is not None and not p.grad.is_sparse]
    return bool(torch.stack(flags).all()) if flags else True


# ====================================================================== the optimizer
class SNRAdamW(torch.optim.Optimizer):
    r"""AdamW with a per-coordinate signal-to-noise gate on the update (module docstring).

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters or parameter groups (every option below may be set per group).
    lr : float
        Learning rate :math:`\eta \ge 0`.
    betas : tuple of float
        Adam's :math:`(\beta_1, \beta_2)`, each in ``[0, 1)``.
    rho : float
        Decay of the centred-variance EMA in ``[0, 1)``; shorter memory than
        :math:`\beta_2` (the reference default 0.99 averages about 100 steps).
    eps : float
        Adam's :math:`\epsilon \ge 0`; :math:`\epsilon^2` also regularises the gate's
        denominator.
    weight_decay : float
        Decoupled weight decay :math:`\lambda \ge 0` (AdamW's).
    gate : {"snr", "soft", "hard", "sigmoid"} or None
        The gate (module docstring); ``None`` disables it: exactly AdamW.
    softness : float
        :math:`\tau > 0`, the multiplier of the noise in the gate (the reference
        implementation suggests 0.3, 1, 3, 10).
    temperature : float
        :math:`T > 0` of the ``"sigmoid"`` gate in log-SNR units.
    reduction : {None, "per_tensor"}
        ``"per_tensor"`` gates whole tensors by their summed signal and noise.
    warmup : int, optional
        Steps with the gate held open while :math:`\hat s` settles; default
        :math:`\lceil 1/(1-\rho) \rceil` (100 for ``rho=0.99``).
    alpha : float or "finite"
        Multiplier :math:`\alpha \ge 0` of the batch-gradient variance in the threshold.
        ``alpha=1`` is the leave-one-out boundary of one fresh batch
        (:doc:`/theory/optimizer`);
        the default 0 with ``momentum_correction`` tests the momentum against its own
        noise :math:`\rho(\beta_1,t)\hat s` (M-SVAG's calibration). ``"finite"``: the
        threshold of a fixed training set of ``num_examples`` examples,
        :math:`\alpha = b/(n-b)` with :math:`b` the batch size of each step
        (:func:`finite_alpha`; Litman and Guo [1]_), recomputed at every step. Measured on
        grokking (``docs/benchmarks_optim.md``): with ``alpha=1`` the gate shut 98-100%
        of the coordinates at batch 512 and the ungated decay pulled the network to
        chance; with ``alpha=0`` it trained in both regimes. On modular division with a
        transformer (batch 512 of 2,328) ``"finite"`` trained, but reached 95% later
        than AdamW (paired ratios 0.39x and 0.53x at two learning rates).
    num_examples : int, optional
        :math:`n`, the number of training examples the batches are drawn from; required
        with ``alpha="finite"`` and refused otherwise.
    batch_size : int, optional
        :math:`b` for ``alpha="finite"`` when every batch has the same size. The batch
        size reaches the optimizer explicitly (it cannot be read from the gradients):
        ``step(batch_size=b)`` for this step, else this option; with neither,
        :meth:`step` raises. ``b`` must be below ``num_examples``.
    momentum_correction : bool
        Add the momentum average's own noise :math:`\rho(\beta_1, t)\hat s` to the
        threshold (M-SVAG). With ``alpha=0`` and ``False`` the noise term vanishes and
        every coordinate with a non-zero momentum passes.
    gate_weight_decay : bool
        ``False`` (default): decay every coordinate (:doc:`/theory/optimizer`). ``True``: scale
        each coordinate's decay by its gate, so a gated-off coordinate is frozen.
        Measured on grokking: gating the decay removes the regularisation that drives
        generalisation (validation accuracy 0.25 after 8,000 steps at batch 512, where
        AdamW reaches 99% in 3,820), so keep it ``False`` unless decay is incidental.
    gate_ema : float, optional
        Keep an EMA with this decay of the applied gate per coordinate, in the state
        key ``"gate_avg"`` (read with :meth:`gate_statistics`; for pruning by
        persistently closed gates). One more parameter-sized tensor per parameter.
    amsgrad : bool
        Use the running maximum of :math:`v` (AMSGrad), as torch's AdamW does.
    maximize : bool
        Maximise the objective.
    foreach : bool, optional
        Use the multi-tensor implementation; default: on when every parameter is on a
        CUDA device (torch's default for AdamW), else the single-tensor loop.
    check_finite : bool
        Before each step, check that every gradient is finite (one host
        synchronisation per step, hence off by default). When one holds NaN or Inf the
        step is skipped: no parameter and no state is changed, a ``RuntimeWarning`` is
        emitted and :attr:`skipped_steps` counts it (as ``torch.amp.GradScaler`` skips
        steps). Off, a NaN gradient propagates into the weights as in
        ``torch.optim.AdamW``.

    Raises
    ------
    ValueError
        A hyperparameter out of range or an unknown ``gate``/``reduction`` (the
        message lists the allowed values); ``alpha="finite"`` without ``num_examples``
        or with ``batch_size >= num_examples``.
    TypeError
        A non-numeric hyperparameter or complex parameters.
    RuntimeError
        At :meth:`step`, a sparse gradient.

    Notes
    -----
    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (as torch's AdamW), plus
    ``grad_var`` (:math:`s`) when the gate is on, ``max_exp_avg_sq`` with AMSGrad and
    ``gate_avg`` with ``gate_ema``. All are tensors, so ``state_dict()`` /
    ``load_state_dict()`` round-trip them; a loaded optimizer continues identically.
    The fraction of open gates per group is kept on the device after every step and
    read (one synchronisation) by :meth:`gate_fraction`.

    References
    ----------
    .. [1] E. Litman and G. Guo, arXiv:2605.01172 (2026).
    .. [2] L. Balles and P. Hennig, ICML 2018.
    .. [3] I. Loshchilov and F. Hutter, ICLR 2019.

    Examples
    --------
    >>> import torch, hessian
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = hessian.SNRAdamW(model.parameters(), lr=1e-2, gate="hard", warmup=0)
    >>> x, y = torch.ones(8, 4), torch.zeros(8, 1)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     torch.nn.functional.mse_loss(model(x), y).backward()
    ...     _ = opt.step()
    >>> 0.0 <= opt.gate_fraction()[0] <= 1.0
    True
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        rho: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        gate: str | None = "snr",
        softness: float = 1.0,
        temperature: float = 0.25,
        reduction: str | None = None,
        warmup: int | None = None,
        alpha: float | str = 0.0,
        num_examples: int | None = None,
        batch_size: int | None = None,
        momentum_correction: bool = True,
        gate_weight_decay: bool = False,
        gate_ema: float | None = None,
        amsgrad: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        check_finite: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, rho=rho, eps=eps, weight_decay=weight_decay, gate=gate,
            softness=softness, temperature=temperature, reduction=reduction, warmup=warmup,
            alpha=alpha, num_examples=num_examples, batch_size=batch_size,
            momentum_correction=momentum_correction,
            gate_weight_decay=gate_weight_decay, gate_ema=gate_ema, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach,
        )
        self.check_finite = check_bool(check_finite, "check_finite")
        #: Steps skipped because a gradient was NaN or infinite (``check_finite=True``).
        self.skipped_steps = 0
        self._check(dict(defaults))  # refuse bad defaults even before any group exists
        super().__init__(params, defaults)
        self._open: list[Tensor | None] = [None] * len(self.param_groups)
        self._counted: list[int] = [0] * len(self.param_groups)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check(g: dict) -> None:
        check_float(g["lr"], "lr", low=0.0)
        betas = g["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        g["betas"] = tuple(check_float(b, f"betas[{i}]", low=0.0, high=1.0, high_open=True)
                           for i, b in enumerate(betas))
        g["rho"] = check_float(g["rho"], "rho", low=0.0, high=1.0, high_open=True)
        for name in ("eps", "weight_decay"):
            check_float(g[name], name, low=0.0)
        _check_alpha(g)
        for name in ("softness", "temperature"):
            check_float(g[name], name, low=0.0, low_open=True)
        check_choice(g["gate"], "gate", (*GATES, None))
        check_choice(g["reduction"], "reduction", _REDUCTIONS)
        if g["warmup"] is None:
            g["warmup"] = math.ceil(1.0 / (1.0 - g["rho"])) if g["rho"] < 1 else 0
        else:
            g["warmup"] = check_int(g["warmup"], "warmup", low=0,
                                    hint=" (None: ceil(1 / (1 - rho)) steps)")
        if g["gate_ema"] is not None:
            check_float(g["gate_ema"], "gate_ema", low=0.0, high=1.0, low_open=True,
                        high_open=True, hint=" (None: no gate statistics)")
        for name in ("momentum_correction", "gate_weight_decay", "amsgrad", "maximize"):
            g[name] = check_bool(g[name], name)
        check_choice(g["foreach"], "foreach", (None, True, False))

    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group (its options are validated like the constructor's)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check(group)
            for p in group["params"]:
                if torch.is_complex(p):
                    raise TypeError("SNRAdamW does not support complex parameters; pass "
                                    "real and imaginary parts as separate real tensors")
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise
        if hasattr(self, "_open"):
            self._open.append(None)
            self._counted.append(0)

    # ------------------------------------------------------------------ state
    def _init_group(self, group: dict) -> tuple[list, ...]:
        params, grads, m, v, s, mx, ga, steps = [], [], [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(
                    "SNRAdamW does not support sparse gradients (got one for a parameter of "
                    f"shape {tuple(p.shape)}); use dense embeddings (sparse=False) or "
                    "torch.optim.SparseAdam"
                )
            state = self.state[p]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["gate"] is not None and "grad_var" not in state:
                state["grad_var"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = torch.zeros_like(p,
                                                           memory_format=torch.preserve_format)
            if group["gate_ema"] is not None and "gate_avg" not in state:
                state["gate_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            m.append(state["exp_avg"])
            v.append(state["exp_avg_sq"])
            s.append(state.get("grad_var") if group["gate"] is not None else None)
            mx.append(state.get("max_exp_avg_sq") if group["amsgrad"] else None)
            ga.append(state.get("gate_avg") if group["gate_ema"] is not None else None)
            steps.append(state["step"])
        return params, grads, m, v, s, mx, ga, steps

    @torch.no_grad()
    def step(self, closure: Any = None, *, batch_size: int | None = None) -> Any:
        """Perform one optimisation step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.
        batch_size : int, optional
            Number of examples in the batch whose gradient is in ``.grad`` (keyword
            only). Used by groups with ``alpha="finite"`` (threshold ``b/(n-b)``) and
            overriding their ``batch_size`` option for this step, for a short last
            batch say; other groups ignore it.

        Returns
        -------
        The closure's loss, or None.

        Raises
        ------
        ValueError
            A group with ``alpha="finite"`` and no batch size (neither here nor in the
            group), or a batch size not below its ``num_examples``. Nothing is updated.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", low=1)
        hypers = [self._hyper(group, batch_size) for group in self.param_groups]
        if self.check_finite and not _all_finite(self.param_groups):
            self.skipped_steps += 1
            warnings.warn(
                "SNRAdamW skipped a step: a gradient holds NaN or Inf (check_finite=True); "
                "parameters and optimizer state are unchanged "
                f"({self.skipped_steps} step(s) skipped so far)", RuntimeWarning, stacklevel=2)
            return loss
        for gi, (group, h) in enumerate(zip(self.param_groups, hypers, strict=True)):
            lists = self._init_group(group)
            if not lists[0]:
                continue
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.device.type == "cuda" for p in lists[0])
            fn = snr_adamw_foreach if foreach else snr_adamw_single
            opened, counted = fn(*lists, hyper=h)
            self._open[gi] = opened
            self._counted[gi] = counted
        return loss

    @staticmethod
    def _hyper(group: dict, batch_size: int | None) -> dict:
        """The step's hyperparameters of ``group``, with the numeric ``alpha``."""
        h = dict(group)
        h["beta1"], h["beta2"] = group["betas"]
        if group["alpha"] == "finite":
            b = batch_size if batch_size is not None else group["batch_size"]
            if b is None:
                raise ValueError(
                    "alpha='finite' needs the batch size of each step: pass "
                    "optimizer.step(batch_size=b), or SNRAdamW(..., batch_size=b) when "
                    "every batch has b examples")
            h["alpha"] = finite_alpha(b, group["num_examples"])
        return h

    # ------------------------------------------------------------------ logging
    def gate_fraction(self) -> list[float]:
        r"""Fraction of coordinates whose gate was open at the last step, per group.

        A coordinate counts as open when its signal exceeded its noise
        (:math:`\hat m^2 > \kappa \hat s`), whatever the gate's shape. While the gate is
        held open (warm-up), disabled, or before the first step, a group reports 1.0.
        Reading synchronises with the device once; the count itself is kept there.

        Returns
        -------
        list of float
        """
        out = []
        for opened, counted in zip(self._open, self._counted, strict=True):
            out.append(1.0 if opened is None or counted == 0 else float(opened) / counted)
        return out

    def gate_statistics(self) -> dict[Tensor, Tensor]:
        """Per-parameter EMA of the applied gate (state key ``"gate_avg"``).

        Values lie in ``[0, 1]``; a coordinate whose gate stays near 0 has had no
        significant gradient signal for about ``1 / (1 - gate_ema)`` steps (a pruning
        candidate). Parameters not stepped yet are absent.

        Returns
        -------
        dict
            ``{parameter: tensor of its shape}``.

        Raises
        ------
        RuntimeError
            When no group keeps the statistic (``gate_ema=None``).
        """
        if all(g["gate_ema"] is None for g in self.param_groups):
            raise RuntimeError("gate statistics are not kept: construct SNRAdamW with "
                               "gate_ema=0.99 (say) to track an EMA of the gate")
        return {p: self.state[p]["gate_avg"] for g in self.param_groups
                for p in g["params"] if "gate_avg" in self.state.get(p, {})}
