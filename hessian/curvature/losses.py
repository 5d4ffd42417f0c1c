"""Losses of language models for the curvature operators.

:class:`LanguageModelLoss` is the token cross-entropy that transformers' language models
compute for themselves (``output.loss``), written as a function of the logits and the
labels, so that the generalised Gauss-Newton matrix and the Fisher, which need the loss
as a function of the model's outputs, can be formed: every counted token position is a
sample with a softmax over the vocabulary, ignored positions (label ``-100``: padding,
prompts) count nowhere, and batches are weighted by their counted tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spectra.validation import check_bool, check_choice, check_int

__all__ = ["LanguageModelLoss"]


class LanguageModelLoss(nn.Module):
    r"""Token cross-entropy of a language model: shifted labels, ignored positions.

    ``loss(logits, target)`` with logits of shape ``(B, T, V)`` (vocabulary last) and
    ``target`` the labels ``(B, T)`` or a batch holding them (a mapping or an object
    with the field ``labels``). With ``shift=True`` (causal language models, what
    transformers' ``*ForCausalLM`` models do) position ``t`` predicts label ``t + 1``
    and the last position predicts nothing; positions whose label is ``ignore_index``
    count nowhere. ``reduction="mean"`` averages over the counted positions: the
    curvature operators then weight batches by their counted tokens.

    Parameters
    ----------
    shift : bool
        Shift the labels by one position (causal LM); ``False`` for masked LMs.
    ignore_index : int
        Label of positions that do not count.
    labels : str
        Field of the batch holding the labels when ``target`` is a batch.
    reduction : {"mean", "sum"}

    Examples
    --------
    >>> import torch
    >>> from hessian import LanguageModelLoss
    >>> logits = torch.zeros(1, 4, 10)
    >>> labels = torch.tensor([[-100, 3, 5, -100]])  # two counted tokens
    >>> loss = LanguageModelLoss()
    >>> round(float(loss(logits, {"labels": labels})), 4), loss.count({"labels": labels})
    (2.3026, 2)
    """

    def __init__(self, *, shift: bool = True, ignore_index: int = -100, labels: str = "labels",
                 reduction: str = "mean") -> None:
        super().__init__()
        self.shift = check_bool(shift, "shift")
        self.ignore_index = check_int(ignore_index, "ignore_index")
        if not isinstance(labels, str):
            raise TypeError("labels must be the name of a batch field, got "
                            f"{type(labels).__name__}")
        self.labels = labels
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum"))

    def extra_repr(self) -> str:
        """The options, for ``repr``."""
        return (f"shift={self.shift}, ignore_index={self.ignore_index}, "
                f"labels={self.labels!r}, reduction={self.reduction!r}")

    def aligned_labels(self, target: Any) -> torch.Tensor:
        """The labels of ``target``, aligned with the logits' positions (shifted if asked).

        Parameters
        ----------
        target : tensor, mapping or object with the labels field

        Returns
        -------
        torch.Tensor
            Integer labels of shape ``(B, T)``; ``ignore_index`` where nothing counts.
        """
        if isinstance(target, torch.Tensor):
            y = target
        elif isinstance(target, Mapping) and self.labels in target:
            y = target[self.labels]
        elif not isinstance(target, Mapping) and hasattr(target, self.labels):
            y = getattr(target, self.labels)
        else:
            what = list(target) if isinstance(target, Mapping) else (
                [f.name for f in dataclasses.fields(target)]
                if dataclasses.is_dataclass(target) else type(target).__name__)
            raise ValueError(f"LanguageModelLoss: the batch has no field {self.labels!r} "
                             f"(got {what}); pass labels= the name of the labels field")
        if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.ndim < 1:
            raise TypeError("LanguageModelLoss: labels must be an integer tensor of shape (B, T)")
        if self.shift:
            y = F.pad(y, (0, 1), value=self.ignore_index)[..., 1:]
        return y

    def count(self, target: Any) -> int:
        """Number of counted positions of ``target`` (the batch's weight for a mean).

        Parameters
        ----------
        target : tensor, mapping or object with the labels field

        Returns
        -------
        int
        """
        return int((self.aligned_labels(target) != self.ignore_index).sum())

    def forward(self, logits: torch.Tensor, target: Any) -> torch.Tensor:
        """Cross-entropy of ``logits`` ``(B, T, V)`` against the labels of ``target``."""
        y = self.aligned_labels(target)
        if logits.shape[:-1] != y.shape:
            raise ValueError(f"LanguageModelLoss: logits of shape {tuple(logits.shape)} do not "
                             f"match labels of shape {tuple(y.shape)} (vocabulary last)")
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=self.ignore_index, reduction=self.reduction)
