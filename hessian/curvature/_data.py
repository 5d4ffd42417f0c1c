"""Data, parameter and model plumbing shared by the curvature operators.

Nothing here is public: :mod:`hessian.operators` builds on it. The helpers turn the
user's ``data=`` into a re-iterable sequence of batches, resolve ``params=`` to named
leaf tensors of the model, and refuse inputs that would give a wrong curvature
silently (stochastic layers in train mode, devices that do not match).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Batch", "Batches", "ModelView", "check_eval_mode", "is_single_batch"]


@dataclass
class Batch:
    """One batch: its position in the pass, model inputs, targets and sample count."""

    index: int
    inputs: Any
    targets: Any
    size: int


def _is_tensor_like(x: Any) -> bool:
    return isinstance(x, torch.Tensor) or (
        isinstance(x, dict) and all(isinstance(v, torch.Tensor) for v in x.values())
    )


def is_single_batch(data: Any, need_targets: bool = True) -> bool:
    """Whether ``data`` is one ``(inputs, targets)`` batch rather than an iterable of them.

    A single batch is a tensor (inputs only), or a pair whose first entry is a tensor,
    a dict of tensors or a tuple of tensors (several model inputs) and whose second
    entry is a tensor (targets) or ``None``. A list of two batches has pairs as
    entries and is therefore not taken for one batch. Without targets (NTK, Jacobian
    Gram) a *list* of tensors is a list of input batches; use a tuple for one pair.
    """
    if isinstance(data, torch.Tensor):
        return True
    if not need_targets and isinstance(data, list):
        return False
    if isinstance(data, (tuple, list)) and len(data) == 2:
        first, second = data
        if second is not None and not isinstance(second, torch.Tensor):
            return False
        if _is_tensor_like(first):
            return True
        return (
            isinstance(first, (tuple, list)) and len(first) > 0
            and all(isinstance(t, torch.Tensor) for t in first) and second is not None
        )
    return False


def _first_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, dict):
        return next(iter(x.values()))
    return x[0]


def _map_tensors(x: Any, fn) -> Any:
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, dict):
        return {k: _map_tensors(v, fn) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_map_tensors(v, fn) for v in x)
    return x


def _tensors(x: Any) -> Iterator[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _tensors(v)


class Batches:
    """A re-iterable view of ``data`` yielding :class:`Batch` objects.

    Parameters
    ----------
    data : tuple, tensor or iterable
        One ``(inputs, targets)`` batch (a bare tensor of inputs when
        ``need_targets=False``), or any re-iterable of such batches (a list, a
        ``DataLoader``). A one-shot iterator is read once and kept in memory.
    device : torch.device
        The model's device; batches elsewhere are refused unless ``move=True``.
    dtype : torch.dtype or None
        Floating tensors are cast to it (float64 evaluation of a float32 model).
    move : bool
        Move batches to ``device`` instead of refusing them.
    need_targets : bool
        Whether targets are required (losses) or ignored (NTK, Jacobian Gram).
    """

    def __init__(self, data: Any, *, device: torch.device, dtype: Any, move: bool,
                 need_targets: bool = True) -> None:
        self.single = is_single_batch(data, need_targets)
        self.device = torch.device(device)
        self.dtype = dtype
        self.move = move
        self.need_targets = need_targets
        if self.single:
            self._source: Any = [data]
        else:
            if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
                raise TypeError(
                    "data must be an (inputs, targets) batch or an iterable of batches "
                    f"(list, DataLoader), got {type(data).__name__}"
                )
            if iter(data) is data:  # one-shot iterator: keep its batches
                data = list(data)
            self._source = data
        self.sizes: list[int] | None = None

    def __iter__(self) -> Iterator[Batch]:
        sizes = []
        for b, item in enumerate(self._source):
            batch = self._unpack(b, item)
            sizes.append(batch.size)
            yield batch
        if not sizes:
            raise ValueError("data is empty: the iterable yielded no batch")
        if self.sizes is None:
            self.sizes = sizes
        elif sizes != self.sizes:
            raise RuntimeError(
                "the data changed between passes: batch sizes "
                f"{_short(self.sizes)} first, {_short(sizes)} now. Curvature operators need "
                "the same data on every pass (a DataLoader with a random sampler and "
                "drop_last, or a stream?); pass a fixed list of batches"
            )

    @property
    def num_samples(self) -> int:
        """Total samples of one pass (known after the first pass)."""
        if self.sizes is None:
            for _ in self:
                pass
        return int(sum(self.sizes))

    def _unpack(self, b: int, item: Any) -> Batch:
        if isinstance(item, torch.Tensor) and not self.need_targets:
            inputs, targets = item, None
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            inputs, targets = item
        elif isinstance(item, dict) and not self.need_targets:
            inputs, targets = item, None
        else:
            raise TypeError(
                f"batch {b} must be an (inputs, targets) pair, got {type(item).__name__}"
                + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
            )
        if self.need_targets and targets is None:
            raise ValueError(f"batch {b} has no targets, but the loss needs them")
        tensors = list(_tensors(inputs)) + list(_tensors(targets))
        if not tensors:
            raise TypeError(f"batch {b} contains no tensor")
        for t in tensors:
            if t.device != self.device:
                if not self.move:
                    raise ValueError(
                        f"batch {b} has a tensor on device {t.device} but the model is on "
                        f"device {self.device}; move the data (or pass move_data=True)"
                    )
        dtype = self.dtype

        def fix(t: torch.Tensor) -> torch.Tensor:
            if self.move and t.device != self.device:
                t = t.to(self.device)
            if dtype is not None and t.is_floating_point() and t.dtype != dtype:
                t = t.to(dtype)
            return t

        inputs, targets = _map_tensors(inputs, fix), _map_tensors(targets, fix)
        first = _first_tensor(inputs)
        size = int(first.shape[0]) if first.ndim else 1
        if size == 0:
            raise ValueError(f"batch {b} is empty (0 samples)")
        return Batch(b, inputs, targets, size)


def _short(sizes: list[int]) -> str:
    return str(sizes) if len(sizes) <= 6 else f"{sizes[:3]}...{sizes[-2:]} ({len(sizes)} batches)"


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
