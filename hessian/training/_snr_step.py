r"""One step of SNR-gated AdamW as functions: the gate, the scalars and two update paths.

The formulas are those of :mod:`hessian.optim` (its docstring states them):
:func:`snr_adamw_single` loops over tensors and :func:`snr_adamw_foreach` uses
``torch._foreach_*`` multi-tensor kernels; both follow the operation order of torch's
AdamW of the same kind. :class:`hessian.SNRAdamW` validates its options and calls one
of them per parameter group.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def momentum_noise(beta: float, t: float) -> float:
    r"""Variance of the debiased EMA mean relative to one sample's: :math:`\rho(\beta, t)`.

    For :math:`\hat m_t = (1-\beta)\sum_{i\le t} \beta^{t-i} g_i / (1-\beta^t)` with
    independent :math:`g_i` of variance :math:`\sigma^2`,
    :math:`\mathrm{Var}(\hat m_t) = \rho(\beta,t)\,\sigma^2` with
    :math:`\rho(\beta,t) = (1-\beta)(1+\beta^t)/((1+\beta)(1-\beta^t))`; M-SVAG
    (Balles and Hennig, 2018) writes the same with :math:`t+1` (its step count starts at
    0). It is 1 at :math:`t = 1` and tends to :math:`(1-\beta)/(1+\beta)`.

    Parameters
    ----------
    beta : float
        EMA decay in ``[0, 1)``.
    t : float
        Number of averaged samples, ``>= 1``.

    Returns
    -------
    float
    """
    if beta == 0.0:
        return 1.0
    bt = beta**t
    return (1.0 - beta) * (1.0 + bt) / ((1.0 + beta) * (1.0 - bt))


# ====================================================================== update functions
def _kappa(h: dict, t: float) -> float:
    k = h["alpha"] + (momentum_noise(h["beta1"], t) if h["momentum_correction"] else 0.0)
    return h["softness"] * k


def _gate_from(x: Tensor, n: Tensor, h: dict, tiny: Any, mask: Tensor | None = None) -> Tensor:
    """Gate values from signal ``x`` and noise ``n`` (same units; ``tiny`` = eps^2).

    ``mask`` may carry ``x > n`` when already computed (it is the hard gate).
    """
    kind = h["gate"]
    if kind == "snr":
        return x / (x + n + tiny)
    if kind == "soft":
        return (x - n).clamp_(min=0.0).div_(x + tiny)
    if kind == "hard":
        return (x > n if mask is None else mask).to(x.dtype)
    return torch.sigmoid((torch.log(x + tiny) - torch.log(n + tiny)) / h["temperature"])


def _scalars(steps: list[Tensor], h: dict) -> list[dict]:
    """Per-tensor Python scalars of one step (the step counts are CPU tensors)."""
    out = []
    for st in steps:
        t = float(st.item()) if st.device.type == "cpu" else float(st)
        bc1 = 1 - h["beta1"] ** t
        bc2 = 1 - h["beta2"] ** t
        prev = 1 - h["beta1"] ** (t - 1) if t > 1 else 0.0
        out.append({
            "t": t, "bc1": bc1, "bc2": bc2, "bc1_prev": prev,
            "bc_s": 1 - h["rho"] ** (t - 1) if t > 1 else 1.0,
            "gated": h["gate"] is not None and t > h["warmup"],
        })
    return out


def snr_adamw_single(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    grad_vars: list[Tensor | None],
    max_exp_avg_sqs: list[Tensor | None],
    gate_avgs: list[Tensor | None],
    steps: list[Tensor],
    *,
    hyper: dict,
) -> tuple[Tensor | None, int]:
    r"""One SNRAdamW step, tensor by tensor (the reference implementation).

    Parameters
    ----------
    params, grads, exp_avgs, exp_avg_sqs : list of Tensor
        Parameters (updated in place), their gradients, Adam's first and second
        moments (updated in place).
    grad_vars : list of Tensor or None
        The centred gradient variance EMAs :math:`s` (``None`` entries when the gate is
        disabled).
    max_exp_avg_sqs : list of Tensor or None
        AMSGrad maxima (``None`` entries unless ``amsgrad``).
    gate_avgs : list of Tensor or None
        EMAs of the applied gate (``None`` entries unless ``gate_ema`` is set).
    steps : list of Tensor
        Step counters (0-d float32 CPU tensors), incremented in place.
    hyper : dict
        The parameter group's hyperparameters (``lr``, ``betas`` split into ``beta1``,
        ``beta2``, ``rho``, ``eps``, ``weight_decay``, ``gate``, ``softness``,
        ``temperature``, ``reduction``, ``warmup``, ``alpha``, ``momentum_correction``,
        ``gate_weight_decay``, ``gate_ema``, ``amsgrad``, ``maximize``).

    Returns
    -------
    open_count : Tensor or None
        Coordinates whose signal exceeded the noise at this step (on the parameters'
        device, no host synchronisation), ``None`` when no tensor was gated.
    numel : int
        Coordinates counted.
    """
    h = hyper
    lr, wd, eps = h["lr"], h["weight_decay"], h["eps"]
    beta1, beta2, rho = h["beta1"], h["beta2"], h["rho"]
    open_count, counted = None, 0
    for i, param in enumerate(params):
        grad = grads[i] if not h["maximize"] else -grads[i]
        exp_avg, exp_avg_sq, s = exp_avgs[i], exp_avg_sqs[i], grad_vars[i]
        steps[i] += 1
        c = _scalars([steps[i]], h)[0]
        gated = c["gated"]
        if wd != 0 and not (gated and h["gate_weight_decay"]):
            param.mul_(1 - lr * wd)
        if s is not None and c["t"] > 1:  # deviation from the previous debiased mean
            delta = exp_avg.mul(-1.0 / c["bc1_prev"]).add_(grad)
            s.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / c["bc1"]
        bc2_sqrt = c["bc2"] ** 0.5
        if h["amsgrad"]:
            torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            denom = (max_exp_avg_sqs[i].sqrt() / bc2_sqrt).add_(eps)
        else:
            denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        if not gated:
            param.addcdiv_(exp_avg, denom, value=-step_size)
            if gate_avgs[i] is not None:
                gate_avgs[i].lerp_(torch.ones_like(gate_avgs[i]), 1 - h["gate_ema"])
            continue
        # signal and noise in units of m^2: x = m^2 = bc1^2 mhat^2, n = kappa bc1^2 shat
        x = exp_avg * exp_avg
        n = s * (_kappa(h, c["t"]) * c["bc1"] ** 2 / c["bc_s"])
        tiny = (eps * c["bc1"]) ** 2
        mask = x > n
        opened = mask.sum()
        if h["reduction"] == "per_tensor":
            x, n, mask = x.sum(), n.sum(), None
        gamma = _gate_from(x, n, h, tiny, mask)
        if h["gate_weight_decay"] and wd != 0:
            param.addcmul_(param, gamma, value=-lr * wd)
        param.addcdiv_(exp_avg * gamma, denom, value=-step_size)
        if gate_avgs[i] is not None:
            gate_avgs[i].lerp_(gamma.expand_as(param), 1 - h["gate_ema"])
        open_count = opened if open_count is None else open_count + opened
        counted += param.numel()
    return open_count, counted


def snr_adamw_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    grad_vars: list[Tensor | None],
    max_exp_avg_sqs: list[Tensor | None],
    gate_avgs: list[Tensor | None],
    steps: list[Tensor],
    *,
    hyper: dict,
) -> tuple[Tensor | None, int]:
    """One SNRAdamW step with ``torch._foreach_*`` multi-tensor operations.

    Same arguments, results and formulas as :func:`snr_adamw_single`; the tensors are
    grouped by device and dtype and each operation is one multi-tensor call per group.
    """
    if not params:
        return None, 0
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype), []).append(i)
    open_count, counted = None, 0
    for idx in groups.values():
        res = _foreach_group(
            [params[i] for i in idx], [grads[i] for i in idx], [exp_avgs[i] for i in idx],
            [exp_avg_sqs[i] for i in idx], [grad_vars[i] for i in idx],
            [max_exp_avg_sqs[i] for i in idx], [gate_avgs[i] for i in idx],
            [steps[i] for i in idx], hyper,
        )
        if res[0] is not None:
            oc = res[0]
            if open_count is not None and oc.device != open_count.device:
                oc = oc.to(open_count.device)
            open_count = oc if open_count is None else open_count + oc
        counted += res[1]
    return open_count, counted


def _foreach_group(params, grads, exp_avgs, exp_avg_sqs, grad_vars, max_sqs, gate_avgs,
                   steps, h) -> tuple[Tensor | None, int]:
    """One step for tensors of one device and dtype: moments, then the (gated) update."""
    cs, denom, step_size = _foreach_moments(params, grads, exp_avgs, exp_avg_sqs, grad_vars,
                                            max_sqs, steps, h)
    gated = [c["gated"] for c in cs]
    if not any(gated):
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)
        _track_open(gate_avgs, None, h)
        return None, 0
    if not all(gated):  # mixed warm-up state (parameters added late): per-tensor path
        g_idx = [k for k in range(len(params)) if gated[k]]
        o_idx = [k for k in range(len(params)) if not gated[k]]
        torch._foreach_addcdiv_([params[k] for k in o_idx], [exp_avgs[k] for k in o_idx],
                                [denom[k] for k in o_idx], [step_size[k] for k in o_idx])
        _track_open([gate_avgs[k] for k in o_idx], None, h)
        sel = g_idx
    else:
        sel = list(range(len(params)))
    return _foreach_gated([params[k] for k in sel], [exp_avgs[k] for k in sel],
                          [grad_vars[k] for k in sel], [denom[k] for k in sel],
                          [gate_avgs[k] for k in sel], [cs[k] for k in sel],
                          [step_size[k] for k in sel], h)


def _foreach_moments(params, grads, exp_avgs, exp_avg_sqs, grad_vars, max_sqs, steps,
                     h) -> tuple[list[dict], list[Tensor], list[float]]:
    """Step counts, decoupled decay, variance EMA and Adam's moments; the denominators."""
    lr, wd, eps = h["lr"], h["weight_decay"], h["eps"]
    beta1, beta2, rho = h["beta1"], h["beta2"], h["rho"]
    if h["maximize"]:
        grads = torch._foreach_neg(grads)
    if steps[0].is_cpu:
        torch._foreach_add_(steps, torch.tensor(1.0, device="cpu"), alpha=1.0)
    else:
        torch._foreach_add_(steps, 1)
    cs = _scalars(steps, h)
    gated = [c["gated"] for c in cs]
    decay_all = not (any(gated) and h["gate_weight_decay"])
    if wd != 0:
        if decay_all:
            torch._foreach_mul_(params, 1 - lr * wd)
        elif not all(gated):  # some tensors still in warm-up (their own step counts)
            plain = [p for p, g in zip(params, gated, strict=True) if not g]
            torch._foreach_mul_(plain, 1 - lr * wd)
    var_idx = [k for k, c in enumerate(cs) if grad_vars[k] is not None and c["t"] > 1]
    if var_idx:
        sv = [grad_vars[k] for k in var_idx]
        delta = torch._foreach_mul([exp_avgs[k] for k in var_idx],
                                   [-1.0 / cs[k]["bc1_prev"] for k in var_idx])
        torch._foreach_add_(delta, [grads[k] for k in var_idx])
        torch._foreach_mul_(sv, rho)
        torch._foreach_addcmul_(sv, delta, delta, 1 - rho)
        del delta
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    step_size = [(lr / c["bc1"]) * -1 for c in cs]
    bc2_sqrt = [c["bc2"] ** 0.5 for c in cs]
    if h["amsgrad"]:
        torch._foreach_maximum_(max_sqs, exp_avg_sqs)
        denom = torch._foreach_sqrt(max_sqs)
    else:
        denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, bc2_sqrt)
    torch._foreach_add_(denom, eps)
    return cs, denom, step_size


def _foreach_gated(P, M, S, D, gate_avgs, cs, step_size, h) -> tuple[Tensor, int]:
    """The gated update of the tensors past warm-up: signal, noise, gate, decay, step."""
    lr, wd, eps = h["lr"], h["weight_decay"], h["eps"]
    x = torch._foreach_mul(M, M)
    n = torch._foreach_mul(S, [_kappa(h, c["t"]) * c["bc1"] ** 2 / c["bc_s"] for c in cs])
    tinies = [(eps * c["bc1"]) ** 2 for c in cs]
    masks = [a > b for a, b in zip(x, n, strict=True)]
    opened = torch.stack([mk.sum() for mk in masks]).sum()
    if h["reduction"] == "per_tensor":
        x = [torch.stack([a.sum() for a in x])]
        n = [torch.stack([b.sum() for b in n])]
        tt = torch.tensor(tinies, dtype=x[0].dtype, device=x[0].device)
        g = _gate_vector(x[0], n[0], h, tt)
        gammas = [g[j].expand_as(p) for j, p in enumerate(P)]
    else:
        gammas = [_gate_from(a, b, h, tt, mk)
                  for a, b, tt, mk in zip(x, n, tinies, masks, strict=True)]
    del x, n, masks
    if h["gate_weight_decay"] and wd != 0:
        torch._foreach_addcmul_(P, P, gammas, -lr * wd)
    upd = torch._foreach_mul(M, gammas)
    torch._foreach_addcdiv_(P, upd, D, step_size)
    _track_open(gate_avgs, gammas, h)
    return opened, sum(p.numel() for p in P)


def _gate_vector(x: Tensor, n: Tensor, h: dict, tiny: Tensor) -> Tensor:
    """Gate values of per-tensor sums ``x``, ``n`` (1-d), with per-entry ``tiny``."""
    kind = h["gate"]
    if kind == "snr":
        return x / (x + n + tiny)
    if kind == "soft":
        return (x - n).clamp(min=0.0) / (x + tiny)
    if kind == "hard":
        return (x > n).to(x.dtype)
    return torch.sigmoid((torch.log(x + tiny) - torch.log(n + tiny)) / h["temperature"])


def _track_open(gate_avgs: list, gammas: list | None, h: dict) -> None:
    if h["gate_ema"] is None:
        return
    for j, a in enumerate(gate_avgs):
        if a is None:
            continue
        target = torch.ones_like(a) if gammas is None else gammas[j].expand_as(a)
        a.lerp_(target, 1 - h["gate_ema"])
