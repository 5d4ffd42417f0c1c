"""Data plumbing of the curvature operators: the user's ``data=`` as batches.

Nothing here is public: :mod:`hessian.curvature.operators` builds on it. The helpers
turn ``data=`` into a re-iterable sequence of batches and refuse data that would give
a wrong curvature silently (batches on another device, data that changes between
passes). The model side (parameters, eval mode) is :mod:`hessian.curvature.model`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Batch", "Batches", "is_single_batch"]


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
