r"""How a curvature operator reads its loss: value, reduction, batch weights, output curvature.

:class:`LossSpec` turns ``loss_fn=`` into what the operators need. For a batch with
outputs :math:`f` and a loss :math:`L = c \sum_r \ell(f_r, y_r)` over its rows ``r``
(samples; token positions of a language model) with ``c = 1/n`` for ``reduction="mean"``
(``n`` the counted rows) and ``1`` for ``"sum"``, the GGN and Fisher need a symmetric
PSD block :math:`\Lambda_r` per row:

* generalised Gauss-Newton: :math:`\Lambda_r = c\, \nabla^2_{f_r} \ell`. Cross-entropy:
  :math:`\operatorname{diag}(p_r) - p_r p_r^T` with :math:`p_r = \operatorname{softmax}(f_r)`
  (zero at ignored rows); squared error (``MSELoss``, mean over the ``C`` outputs):
  :math:`(2/C) I`. Neither needs a double backward through ``log_softmax``; any other
  loss of the outputs gets its output Hessian by autograd.
* empirical Fisher: :math:`\Lambda_r = c\, g_r g_r^T` with
  :math:`g_r = \nabla_{f_r} \ell(f_r, y_r)` at the true targets.
* Monte-Carlo Fisher: the same with targets drawn from the model's predictive
  distribution, for which :math:`-\log p(y \mid f) = \ell(f, y) + \text{const}`:
  categorical :math:`\operatorname{softmax}(f_r)` for cross-entropy, Gaussian
  :math:`\mathcal{N}(f_r, \sigma^2 I)` with :math:`\sigma^2 = C/2` (mean) or
  :math:`1/2` (sum) for squared error, so that :math:`\mathbb{E}[g g^T] = \nabla^2_f \ell`.

The reduction of a plain function is found by :func:`probe_reduction`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spectra.validation import check_choice

from ._data import Batch
from .losses import LanguageModelLoss
from .model import select_output

__all__ = ["LossSpec", "probe_reduction"]

Block = Callable[[torch.Tensor], torch.Tensor]


def _kind(loss_fn: Any) -> str:
    if loss_fn is None:
        return "none"
    if isinstance(loss_fn, str):
        return "field"
    if isinstance(loss_fn, LanguageModelLoss):
        return "lm"
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        plain = loss_fn.weight is None and loss_fn.label_smoothing == 0
        return "ce" if plain else "other"
    if loss_fn is F.cross_entropy:
        return "ce"
    if isinstance(loss_fn, nn.MSELoss) or loss_fn is F.mse_loss:
        return "mse"
    if not callable(loss_fn):
        raise TypeError("loss_fn must be a callable loss_fn(output, target), the name of the "
                        f"model output's loss field (e.g. 'loss'), or None; got "
                        f"{type(loss_fn).__name__}")
    return "other"


def _reduction(loss_fn: Any, reduction: str | None) -> str | None:
    """The declared reduction (attribute, known function or argument); ``None``: unknown."""
    red = getattr(loss_fn, "reduction", None) if not isinstance(loss_fn, str) else None
    if loss_fn is F.cross_entropy or loss_fn is F.mse_loss:
        red = "mean"
    if isinstance(red, str):
        if reduction is not None and reduction != red:
            raise ValueError(f"reduction={reduction!r} contradicts the loss's reduction {red!r}")
        if red not in ("mean", "sum"):
            raise ValueError(
                f"loss_fn.reduction is {red!r}: the loss must be a scalar, use 'mean' or 'sum'"
            )
        return red
    if reduction is None:
        return None
    return check_choice(reduction, "reduction", ("mean", "sum"))


class LossSpec:
    """The loss of an operator: ``loss_fn`` with its output field, reduction and weights.

    Parameters
    ----------
    loss_fn : callable, str or None
        ``loss_fn(output, target)``; a string names the model output's field holding
        the loss (``"loss"``: ``output.loss``); ``None`` for operators without a loss.
    output : None, str or callable
        What of the model's return the loss and the output-space curvature see.
    reduction : {"mean", "sum"} or None
        Given, or ``None`` to take it from the loss (``None`` if it cannot tell).
    num_examples : callable, optional
        ``num_examples(batch) -> int``: the examples a batch's mean averages over.
    """

    def __init__(self, loss_fn: Any, *, output: Any = None, reduction: str | None = None,
                 num_examples: Callable | None = None) -> None:
        self.fn = loss_fn
        self.kind = _kind(loss_fn)
        if output is not None and not (callable(output) or isinstance(output, str)):
            raise TypeError("output must be None, the name of a field of the model's output "
                            f"(e.g. 'logits') or a callable, got {type(output).__name__}")
        if num_examples is not None and not callable(num_examples):
            raise TypeError("num_examples must be a callable num_examples(batch) -> int, got "
                            f"{type(num_examples).__name__}")
        self.output = output
        self.num_examples = num_examples
        self.reduction = "sum" if self.kind == "none" else _reduction(loss_fn, reduction)

    # ------------------------------------------------------------------ weights
    def count(self, batch: Batch) -> float:
        """Examples in ``batch`` that a mean-reduced loss averages over (its weight)."""
        if self.num_examples is not None:
            n = self.num_examples(batch.target if batch.kind == "pair" else batch.inputs)
            n = float(n.item() if isinstance(n, torch.Tensor) else n)
            if not n >= 0:
                raise ValueError(f"num_examples returned {n} for batch {batch.index}; it must "
                                 "count the examples (>= 0)")
            return n
        if self.kind == "lm":
            return float(self.fn.count(batch.target))
        y = batch.target
        if (self.kind == "ce" or isinstance(self.fn, nn.CrossEntropyLoss)) and \
                isinstance(y, torch.Tensor) and not y.is_floating_point():
            ignore = getattr(self.fn, "ignore_index", -100)
            valid = y != ignore
            weight = getattr(self.fn, "weight", None)
            if weight is not None:
                return float(weight[y[valid].long()].sum())
            return float(valid.sum())
        batch.guessed = bool(batch.dims)  # the inputs disagree on the size
        return float(batch.size)

    # ------------------------------------------------------------------ value
    def value(self, raw: Any, batch: Batch, selected: bool = False) -> torch.Tensor:
        """The batch loss, a scalar tensor, from the model's return ``raw``.

        ``selected``: ``raw`` is already the output ``output=`` picks (:meth:`outputs`).
        """
        if self.kind == "field":
            L = select_output(raw, self.fn, batch.index, tensor=False)
        else:
            known = self.kind in ("ce", "lm", "mse") or isinstance(self.fn, nn.CrossEntropyLoss)
            out = raw if selected else select_output(raw, self.output, batch.index,
                                                     tensor=known)
            self._check_targets(out, batch)
            try:
                L = self.fn(out, batch.target)
            except IndexError as err:  # torch's "Target 5 is out of bounds"
                raise ValueError(f"the loss failed at batch {batch.index}: {err} (class targets "
                                 "outside [0, C - 1]?)") from err
        if not isinstance(L, torch.Tensor) or L.numel() != 1 or L.ndim > 1:
            shape = tuple(L.shape) if isinstance(L, torch.Tensor) else type(L).__name__
            raise ValueError(
                f"the loss must be a scalar tensor, got {shape} at batch {batch.index}; "
                "use reduction='mean' (or 'sum')"
            )
        return L.reshape(())

    def _check_targets(self, out: Any, batch: Batch) -> None:
        """Class targets in range, by name (torch raises an IndexError or worse)."""
        if self.kind == "mse" and batch.target is None:
            raise ValueError(f"batch {batch.index} has no targets, but the loss needs them")
        if not (self.kind in ("ce", "lm") or isinstance(self.fn, nn.CrossEntropyLoss)):
            return
        if self.kind == "lm":
            y, C = self.fn.aligned_labels(batch.target), out.shape[-1]
        else:
            y, C = batch.target, (out.shape[1] if out.ndim > 1 else out.shape[0])
        if y is None:
            raise ValueError(f"batch {batch.index} has no targets, but the loss needs them")
        if not isinstance(y, torch.Tensor) or y.is_floating_point():
            return
        ignore = getattr(self.fn, "ignore_index", -100)
        valid = y[y != ignore]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= C):
            raise ValueError(
                f"class targets must be in [0, {C - 1}] (the model has {C} classes; "
                f"{ignore} marks ignored positions); batch "
                f"{batch.index} has targets in [{int(valid.min())}, {int(valid.max())}]"
            )

    def outputs(self, raw: Any, batch: Batch) -> torch.Tensor:
        """The tensor of outputs the output-space curvature acts on."""
        if self.kind == "field":
            raise ValueError(
                "the GGN and the Fisher need the loss as a function of the model's outputs, "
                f"not the output field {self.fn!r}: pass loss_fn=callable(output, target), "
                "e.g. hessian.LanguageModelLoss() with output='logits' for a language model"
            )
        return select_output(raw, self.output, batch.index)

    # ------------------------------------------------------------------ output curvature
    def _rows(self, out: torch.Tensor, target: Any) -> tuple | None:
        """Cross-entropy rows: ``(logits (R, C), labels (R,) or None, probs or None, mask)``."""
        if self.kind == "lm":
            y = self.fn.aligned_labels(target).reshape(-1)
            logits = out.reshape(-1, out.shape[-1])
        elif self.kind == "ce" and out.ndim == 2:
            y, logits = target, out
        else:
            return None
        if y.shape == logits.shape and y.is_floating_point():
            return logits, None, y, y.sum(-1)
        if y.shape != logits.shape[:1]:
            raise ValueError(
                f"cross-entropy targets must be class indices (N,) or probabilities (N, C); "
                f"got {tuple(y.shape)} for logits {tuple(logits.shape)}"
            )
        ignore = getattr(self.fn, "ignore_index", -100)
        mask = (y != ignore).to(logits.dtype)
        return logits, torch.where(y == ignore, 0, y).long(), None, mask

    def _scale(self, rows: tuple | None, out: torch.Tensor) -> float:
        if self.reduction == "sum":
            return 1.0
        if rows is None:
            return 1.0 / out.shape[0]
        logits, y, _, mask = rows
        return 1.0 / max(float(mask.sum()), 1.0) if y is not None else 1.0 / logits.shape[0]

    def ggn(self, out: torch.Tensor, batch: Batch) -> Block:
        """``W -> Lambda W`` for the GGN (``W`` of shape ``(p, *out.shape)``)."""
        out = out.detach()
        rows = self._rows(out, batch.target)
        if rows is not None:
            p = torch.softmax(rows[0], dim=-1)
            cm = self._scale(rows, out) * rows[3][:, None]
            R, C = p.shape

            def apply_ce(W: torch.Tensor) -> torch.Tensor:
                pW = p * W.reshape(W.shape[0], R, C)
                return (cm * (pW - p * pW.sum(-1, keepdim=True))).reshape(W.shape)

            return apply_ce
        if self.kind == "mse":
            # MSELoss(mean) averages over every element: L = sum ||f - y||^2 / (N C)
            s = 2.0 / out.numel() if self.reduction == "mean" else 2.0
            return lambda W: s * W
        return _autograd_block(lambda o: self.fn(o, batch.target), out)

    def residuals(self, out: torch.Tensor, target: Any, draw: Any = None) -> torch.Tensor:
        """Per-row output gradients ``g_r`` of ``ell(f_r, y_r)``, shape ``(R, C)``.

        ``draw``: targets drawn by :meth:`draw` in place of the batch's (one draw).
        """
        rows = self._rows(out, target)
        if rows is not None:
            logits, y, probs, mask = rows
            p = torch.softmax(logits, dim=-1)
            if draw is not None:
                y, probs = draw, None
            if probs is not None:
                return p * mask[:, None] - probs
            return (p - F.one_hot(y, logits.shape[-1]).to(p.dtype)) * mask[:, None]
        if self.kind == "mse":
            y = target if draw is None else draw
            if y is None or y.shape != out.shape:
                shape = None if y is None else tuple(y.shape)
                raise ValueError(f"MSE targets of shape {shape} for outputs {tuple(out.shape)}")
            C = out[0].numel()
            s = 2.0 / C if self.reduction == "mean" else 2.0
            return (s * (out - y)).reshape(out.shape[0], -1)
        raise ValueError(
            "the Fisher needs a loss with a known likelihood: torch.nn.CrossEntropyLoss "
            "(no class weights, no label smoothing), torch.nn.MSELoss or "
            "hessian.LanguageModelLoss"
        )

    def draw(self, out: torch.Tensor, batch: Batch, num: int,
             generator: torch.Generator) -> torch.Tensor:
        """Draw ``num`` targets per row from the model's predictive distribution."""
        out = out.detach()
        rows = self._rows(out, batch.target)
        if rows is not None:
            p = torch.softmax(rows[0].to(torch.float64), dim=-1).to(generator.device)
            idx = torch.multinomial(p, num, replacement=True, generator=generator)
            return idx.T.to(out.device)  # (M, R)
        if self.kind == "mse":
            C = out[0].numel()
            sigma = (C / 2.0) ** 0.5 if self.reduction == "mean" else 0.5**0.5
            eps = torch.randn((num, *out.shape), generator=generator, device=generator.device,
                              dtype=out.dtype)
            return out[None] + sigma * eps.to(out.device)  # (M, N, C)
        raise ValueError(
            "the Monte-Carlo Fisher needs a loss with a known likelihood: "
            "torch.nn.CrossEntropyLoss, torch.nn.MSELoss or hessian.LanguageModelLoss"
        )

    def fisher(self, out: torch.Tensor, batch: Batch,
               mc_targets: torch.Tensor | None) -> Block:
        """``W -> Lambda W`` for the empirical (``mc_targets=None``) or MC Fisher."""
        out = out.detach()
        c = self._scale(self._rows(out, batch.target), out)
        if mc_targets is None:
            G = self.residuals(out, batch.target)[None]  # (1, R, C)
        else:
            G = torch.stack([self.residuals(out, batch.target, t) for t in mc_targets])
            c = c / mc_targets.shape[0]
        R = G.shape[1]

        def apply(W: torch.Tensor) -> torch.Tensor:
            Wf = W.reshape(W.shape[0], R, -1)
            dots = torch.einsum("mrc,prc->pmr", G, Wf)
            return (c * torch.einsum("pmr,mrc->prc", dots, G)).reshape(W.shape)

        return apply


def _autograd_block(loss_of: Callable[[torch.Tensor], torch.Tensor], out: torch.Tensor) -> Block:
    """``W -> (d^2 L / d out^2) W`` by autograd on the outputs only (they are small)."""
    o = out.clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(loss_of(o), o, create_graph=True)
    if not g.requires_grad:  # loss linear in the outputs
        return lambda W: torch.zeros_like(W)

    def apply_generic(W: torch.Tensor) -> torch.Tensor:
        if W.shape[0] == 1:
            (h,) = torch.autograd.grad(g, o, W[0], retain_graph=True)
            return h[None]
        (h,) = torch.autograd.grad(g, o, W, retain_graph=True, is_grads_batched=True)
        return h

    return apply_generic


def probe_reduction(loss_of: Callable[[Batch], float], batches: Any, dtype: Any) -> str | None:
    """Find a loss's reduction from its value on a batch and on the batch's two parts.

    With counts ``n = n1 + n2`` (:meth:`LossSpec.count`) a mean satisfies
    ``L = (n1 L1 + n2 L2) / n`` and a sum ``L = L1 + L2``; the parts are unequal (a
    third and two thirds), so a loss averaged over anything else fails both. Three
    forwards without a graph, on the first batch of two or more samples.

    Returns
    -------
    {"mean", "sum"} or None
        ``None`` when neither (or both) fit, or no batch can be split.
    """
    tol = float(torch.finfo(dtype).eps) ** 0.5
    for batch in batches:
        parts = batches.halves(batch)
        if parts is None:
            continue
        (a, b), L = parts, loss_of(batch)
        La, Lb = loss_of(a), loss_of(b)
        scale = abs(L) + abs(La) + abs(Lb)
        n = a.count + b.count
        mean = n > 0 and abs(L - (a.count * La + b.count * Lb) / n) <= tol * scale
        total = abs(L - (La + Lb)) <= tol * scale
        if mean != total:
            return "mean" if mean else "sum"
        return None
    return None
