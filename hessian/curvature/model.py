"""The model side of a curvature operator: chosen parameters, train and eval mode.

:class:`ModelView` resolves ``params=`` to named leaf tensors of the model (or of a
private copy in another precision) and evaluates the model on a batch, plainly or with
the parameters replaced (``torch.func.functional_call``). :func:`check_eval_mode`
refuses a model whose train-mode layers would make its curvature change from one pass
to the next, and :func:`eval_mode` switches a model to eval mode for a block and
restores every module's flag afterwards (what the training-time tools do around each
measurement).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["ModelView", "check_eval_mode", "eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module of ``model`` in eval mode for the block, then restore each flag.

    Dropout is off and BatchNorm uses its running statistics inside the block; on exit
    every submodule gets back its own ``training`` flag (a model partly in eval mode
    stays so), also when the block raises.

    Parameters
    ----------
    model : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from hessian.curvature.model import eval_mode
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> with eval_mode(model):
    ...     model[1].training
    False
    >>> model[1].training
    True
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


# ---------------------------------------------------------------------- train mode
_STOCHASTIC = (nn.modules.dropout._DropoutNd,)
_NORMS = (nn.modules.batchnorm._BatchNorm,)


def check_eval_mode(model: nn.Module) -> None:
    """Refuse a model whose train-mode layers make its curvature ill-defined.

    Dropout (``p > 0``) in train mode draws new masks on every pass, and BatchNorm in
    train mode normalises by batch statistics and updates its running buffers on every
    forward; both make two products with the same probe disagree.
    """
    bad = []
    for name, m in model.named_modules():
        if not m.training:
            continue
        if isinstance(m, _STOCHASTIC) and m.p > 0:
            bad.append(f"{name or '<root>'} ({type(m).__name__}, p={m.p})")
        elif isinstance(m, _NORMS):
            bad.append(f"{name or '<root>'} ({type(m).__name__})")
        elif isinstance(m, nn.MultiheadAttention) and m.dropout > 0:
            bad.append(f"{name or '<root>'} (MultiheadAttention, dropout={m.dropout})")
    if bad:
        raise ValueError(
            "the model is in train mode with stochastic or batch-dependent layers: "
            + ", ".join(bad[:5]) + ("..." if len(bad) > 5 else "")
            + ". Their curvature changes on every pass; call model.eval() first"
        )


# ---------------------------------------------------------------------- parameters
class ModelView:
    """The model (or its float64 copy) with the chosen parameters as named leaves.

    Parameters
    ----------
    model : torch.nn.Module
    params : None, iterable of tensors or of names, or dict name -> tensor
        ``None``: every parameter with ``requires_grad``.
    dtype : torch.dtype or None
        Evaluate in this precision; a different one from the model's makes a private
        deep copy of the model converted to it (the user's model is not touched).
    """

    def __init__(self, model: nn.Module, params: Any, dtype: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        named = dict(model.named_parameters())
        if not named:
            raise ValueError("the model has no parameters")
        names = self._resolve(model, named, params)
        first = named[names[0]]
        self.model_dtype = first.dtype
        self.dtype = first.dtype if dtype is None else dtype
        if self.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}")
        self.device = first.device
        for n in names:
            if named[n].device != self.device:
                raise ValueError(
                    f"parameters live on several devices ({self.device} and "
                    f"{named[n].device} for {n!r}); one device per operator"
                )
        if self.dtype != first.dtype or any(named[n].dtype != self.dtype for n in names):
            model = copy.deepcopy(model).to(self.dtype)
            named = dict(model.named_parameters())
        self.module = model
        self.names = names
        self.params = [named[n] for n in names]
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.num_params = int(sum(self.numels))
        chosen = set(names)
        self.frozen = {k: v.detach() for k, v in named.items() if k not in chosen}
        self.buffers = dict(model.named_buffers())

    @staticmethod
    def _resolve(model: nn.Module, named: dict, params: Any) -> list[str]:
        if params is None:
            names = [n for n, p in named.items() if p.requires_grad]
            if not names:
                raise ValueError("no parameter of the model requires grad")
            return names
        if isinstance(params, dict):
            params = list(params.values())
        if isinstance(params, (torch.Tensor, str)):
            params = [params]
        by_id = {id(p): n for n, p in named.items()}
        names = []
        for p in params:
            if isinstance(p, str):
                if p not in named:
                    raise ValueError(f"the model has no parameter named {p!r}")
                n = p
            elif isinstance(p, torch.Tensor):
                if id(p) not in by_id:
                    raise ValueError(
                        f"a tensor of shape {tuple(p.shape)} in params is not a parameter of "
                        "the model"
                    )
                n = by_id[id(p)]
            else:
                raise TypeError(f"params entries must be tensors or names, got {type(p).__name__}")
            if not named[n].requires_grad:
                raise ValueError(
                    f"parameter {n!r} does not require grad; curvature needs "
                    "requires_grad=True on every chosen parameter"
                )
            if n not in names:
                names.append(n)
        if not names:
            raise ValueError("params is empty")
        return names

    def call(self, inputs: Any) -> Any:
        """Run the model on ``inputs`` (tensor, tuple of positional args, or dict)."""
        return _call(self.module, inputs)

    def call_functional(self, pdict: dict, inputs: Any) -> Any:
        """Run the model with the chosen parameters replaced by ``pdict``."""
        state = {**self.frozen, **self.buffers, **pdict}
        return torch.func.functional_call(self.module, state, _args(inputs), _kwargs(inputs))

    # flat <-> per-parameter
    def split(self, Vt: torch.Tensor) -> list[torch.Tensor]:
        """Views of a ``(p, P)`` block as ``(p, *shape)`` per parameter."""
        out, o = [], 0
        p = Vt.shape[0]
        for n, s in zip(self.numels, self.shapes, strict=True):
            out.append(Vt[:, o:o + n].reshape(p, *s))
            o += n
        return out

    def join(self, parts: list, p: int, like: torch.Tensor) -> torch.Tensor:
        """Concatenate per-parameter ``(p, *shape)`` blocks (``None`` = zero) into ``(p, P)``."""
        cols = []
        for part, n in zip(parts, self.numels, strict=True):
            if part is None:
                cols.append(like.new_zeros(p, n))
            else:
                cols.append(part.reshape(p, n))
        return torch.cat(cols, dim=1)


def _args(inputs: Any) -> tuple:
    if isinstance(inputs, dict):
        return ()
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    return (inputs,)


def _kwargs(inputs: Any) -> dict:
    return dict(inputs) if isinstance(inputs, dict) else {}


def _call(module: nn.Module, inputs: Any) -> Any:
    return module(*_args(inputs), **_kwargs(inputs))
