r"""Output-space curvature of the loss: closed forms for cross-entropy and squared error.

For a batch with outputs :math:`f \in \mathbb{R}^{N \times C}` and a loss
:math:`L = c \sum_i \ell(f_i, y_i)` (``c = 1/N`` for ``reduction="mean"``, ``1`` for
``"sum"``), the curvature operators need a symmetric PSD block
:math:`\Lambda_i \in \mathbb{R}^{C \times C}` per sample:

* generalised Gauss-Newton: :math:`\Lambda_i = c\, \nabla^2_{f_i} \ell`. Cross-entropy:
  :math:`\operatorname{diag}(p_i) - p_i p_i^T` with :math:`p_i = \operatorname{softmax}(f_i)`;
  squared error (``MSELoss``, mean over the ``C`` outputs): :math:`(2/C) I`. Neither needs
  a double backward through ``log_softmax``.
* empirical Fisher: :math:`\Lambda_i = c\, r_i r_i^T` with
  :math:`r_i = \nabla_{f_i} \ell(f_i, y_i)` at the true targets.
* Monte-Carlo Fisher: the same with targets drawn from the model's predictive
  distribution, for which :math:`-\log p(y \mid f) = \ell(f, y) + \text{const}`:
  categorical :math:`\operatorname{softmax}(f_i)` for cross-entropy, Gaussian
  :math:`\mathcal{N}(f_i, \sigma^2 I)` with :math:`\sigma^2 = C/2` (mean) or
  :math:`1/2` (sum) for squared error. Then
  :math:`\mathbb{E}[r r^T] = \nabla^2_f \ell` and the MC Fisher is unbiased for the GGN.

Each function returns a map ``W -> Lambda W`` on blocks of shape ``(p, N, C)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spectra.validation import check_choice

__all__ = ["loss_kind", "loss_reduction", "ggn_block", "fisher_block", "draw_mc_targets"]


def loss_kind(loss_fn: Any) -> str:
    """``"ce"``, ``"mse"`` or ``"other"`` (closed forms exist for the first two)."""
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        if loss_fn.weight is not None or loss_fn.label_smoothing != 0:
            return "other"
        return "ce"
    if isinstance(loss_fn, nn.MSELoss) or loss_fn is F.mse_loss:
        return "mse"
    if loss_fn is F.cross_entropy:
        return "ce"
    return "other"


def loss_reduction(loss_fn: Any, reduction: str | None) -> str:
    """The reduction of ``loss_fn``: its ``reduction`` attribute, else ``reduction`` or mean."""
    red = getattr(loss_fn, "reduction", None)
    if isinstance(red, str):
        if reduction is not None and reduction != red:
            raise ValueError(f"reduction={reduction!r} contradicts loss_fn.reduction={red!r}")
        if red not in ("mean", "sum"):
            raise ValueError(
                f"loss_fn.reduction is {red!r}: the loss must be a scalar, use 'mean' or 'sum'"
            )
        return red
    return check_choice(reduction or "mean", "reduction", ("mean", "sum"))


def _scale(reduction: str, out: torch.Tensor) -> float:
    return 1.0 / out.shape[0] if reduction == "mean" else 1.0


def _check_ce(out: torch.Tensor, y: torch.Tensor) -> None:
    if out.ndim != 2:
        raise ValueError(
            f"closed-form cross-entropy needs logits of shape (N, C), got {tuple(out.shape)}"
        )
    if y.shape != out.shape[:1] and y.shape != out.shape:
        raise ValueError(
            f"cross-entropy targets must be class indices (N,) or probabilities (N, C); "
            f"got {tuple(y.shape)} for logits {tuple(out.shape)}"
        )


def ggn_block(kind: str, reduction: str, out: torch.Tensor, y: Any,
              loss_fn: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``W -> Lambda W`` for the GGN (``W`` of shape ``(p, *out.shape)``)."""
    out = out.detach()
    c = _scale(reduction, out)
    if kind == "ce" and out.ndim == 2:
        _check_ce(out, y)
        p = torch.softmax(out, dim=-1)

        def apply_ce(W: torch.Tensor) -> torch.Tensor:
            pW = p * W
            return c * (pW - p * pW.sum(-1, keepdim=True))

        return apply_ce
    if kind == "mse":
        # MSELoss(mean) averages over every element: L = sum ||f - y||^2 / (N C)
        s = 2.0 / out.numel() if reduction == "mean" else 2.0
        return lambda W: s * W
    # any other loss: Hessian w.r.t. the outputs by autograd (small: outputs only)
    o = out.clone().requires_grad_(True)
    with torch.enable_grad():
        L = loss_fn(o, y)
        (g,) = torch.autograd.grad(L, o, create_graph=True)
    if not g.requires_grad:  # loss linear in the outputs
        return lambda W: torch.zeros_like(W)

    def apply_generic(W: torch.Tensor) -> torch.Tensor:
        if W.shape[0] == 1:
            (h,) = torch.autograd.grad(g, o, W[0], retain_graph=True)
            return h[None]
        (h,) = torch.autograd.grad(g, o, W, retain_graph=True, is_grads_batched=True)
        return h

    return apply_generic


def _residuals(kind: str, reduction: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample output gradients ``r_i`` of ``ell(f_i, y_i)``, shape ``(N, C)``."""
    if kind == "ce":
        _check_ce(out, y)
        p = torch.softmax(out, dim=-1)
        if y.shape == out.shape:
            return p * y.sum(-1, keepdim=True) - y
        return p - F.one_hot(y.long(), out.shape[-1]).to(out.dtype)
    if kind == "mse":
        if y.shape != out.shape:
            raise ValueError(
                f"MSE targets of shape {tuple(y.shape)} for outputs {tuple(out.shape)}"
            )
        C = out[0].numel()
        s = 2.0 / C if reduction == "mean" else 2.0
        return s * (out - y)
    raise ValueError(
        "the Fisher needs a loss with a known likelihood: torch.nn.CrossEntropyLoss "
        "(no class weights, no label smoothing) or torch.nn.MSELoss"
    )


def draw_mc_targets(kind: str, reduction: str, out: torch.Tensor, num_samples: int,
                    generator: torch.Generator) -> torch.Tensor:
    """Draw ``num_samples`` targets per sample from the model's predictive distribution."""
    out = out.detach()
    if kind == "ce":
        _check_ce(out, out.new_zeros(out.shape[0]))
        p = torch.softmax(out.to(torch.float64), dim=-1)
        p = p.to(generator.device)
        idx = torch.multinomial(p, num_samples, replacement=True, generator=generator)
        return idx.T.to(out.device)  # (M, N)
    if kind == "mse":
        C = out[0].numel()
        sigma = (C / 2.0) ** 0.5 if reduction == "mean" else 0.5**0.5
        eps = torch.randn((num_samples, *out.shape), generator=generator,
                          device=generator.device, dtype=out.dtype)
        return out[None] + sigma * eps.to(out.device)  # (M, N, C)
    raise ValueError(
        "the Monte-Carlo Fisher needs a loss with a known likelihood: "
        "torch.nn.CrossEntropyLoss or torch.nn.MSELoss"
    )


def fisher_block(kind: str, reduction: str, out: torch.Tensor, y: Any,
                 mc_targets: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``W -> Lambda W`` for the empirical (``mc_targets=None``) or MC Fisher."""
    out = out.detach()
    c = _scale(reduction, out)
    if mc_targets is None:
        R = _residuals(kind, reduction, out, y)[None]  # (1, N, C)
    else:
        R = torch.stack([_residuals(kind, reduction, out, t) for t in mc_targets])
        c = c / mc_targets.shape[0]
    N = out.shape[0]
    R = R.reshape(R.shape[0], N, -1)

    # Lambda W = c * sum_m r_m (r_m . W), per sample
    def apply(W: torch.Tensor) -> torch.Tensor:
        Wf = W.reshape(W.shape[0], N, -1)
        dots = torch.einsum("mnc,pnc->pmn", R, Wf)
        return (c * torch.einsum("pmn,mnc->pnc", dots, R)).reshape(W.shape)

    return apply
