"""Data plumbing of the curvature operators: the user's ``data=`` as batches.

Nothing here is public: :mod:`hessian.curvature.operators` builds on it and documents
the conventions. A batch is read by its type, never by guessing from its contents:

* a tuple or list of two, ``(inputs, targets)``: the model gets ``inputs`` (a tensor,
  a tuple of positional tensors or a mapping of keyword tensors), the loss ``targets``;
* a mapping (``dict``, transformers' ``BatchEncoding``) or a dataclass instance: the
  model gets its fields as keyword arguments, the loss the whole batch;
* a bare tensor: the model's only input, the loss gets the batch itself;
* with ``batch_format="args"``: a tuple or list of positional inputs (``model(*batch)``),
  the loss gets the whole batch.

The helpers also refuse data that would give a wrong curvature silently (batches on
another device, data that changes between passes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from spectra.validation import check_choice

__all__ = ["BATCH_FORMATS", "Batch", "Batches", "call_args", "is_single_batch", "map_tensors",
           "tensors"]

BATCH_FORMATS = ("auto", "args")


@dataclass
class Batch:
    """One batch of a pass.

    ``inputs`` go to the model (see :func:`call_args`), ``target`` is the second argument
    of the loss, ``size`` the number of samples (leading dimension of the first input
    tensor) and ``count`` the number of examples a mean-reduced loss averages over
    (the batch's weight; ``size`` unless the loss or ``num_examples=`` says otherwise).
    """

    index: int
    inputs: Any
    target: Any
    size: int
    count: float
    kind: str  # "pair", "kwargs", "args" or "tensor"
    #: leading dimensions of the input tensors, when they disagree (the size is then
    #: the first tensor's); ``guessed``: the weight was taken from that size
    dims: tuple = ()
    guessed: bool = False


def _is_record(x: Any) -> bool:
    """A mapping or a dataclass instance: a batch of keyword inputs."""
    return isinstance(x, Mapping) or (dataclasses.is_dataclass(x) and not isinstance(x, type))


def _fields(x: Any) -> dict:
    if isinstance(x, Mapping):
        return dict(x)
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}


def call_args(inputs: Any, kind: str) -> tuple[tuple, dict]:
    """Positional and keyword arguments of the model for a batch's ``inputs``."""
    if kind == "args" or (kind == "pair" and isinstance(inputs, (tuple, list))):
        return tuple(inputs), {}
    if _is_record(inputs):
        return (), _fields(inputs)
    return (inputs,), {}


def _is_tensor_like(x: Any) -> bool:
    return isinstance(x, torch.Tensor) or (
        _is_record(x) and any(isinstance(v, torch.Tensor) for v in _fields(x).values())
    )


def is_single_batch(data: Any, need_targets: bool = True, batch_format: str = "auto") -> bool:
    """Whether ``data`` is one batch rather than an iterable of batches.

    One batch is a tensor, a mapping or dataclass, or a pair whose first entry is a
    tensor, a mapping of tensors or a tuple of tensors and whose second entry is a
    tensor or ``None`` (a list of two batches has pairs as entries and is therefore not
    taken for one). With ``batch_format="args"``: a tuple whose first entry is a tensor.
    Without targets (NTK, Jacobian Gram) a *list* of tensors is a list of input batches;
    use a tuple for one pair.
    """
    if isinstance(data, torch.Tensor) or _is_record(data):
        return True
    if batch_format == "args":
        return isinstance(data, tuple) and len(data) > 0 and isinstance(data[0], torch.Tensor)
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


def map_tensors(x: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """Apply ``fn`` to every tensor of a nested batch, keeping the containers' types."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.replace(x, **{k: map_tensors(v, fn) for k, v in _fields(x).items()})
    if isinstance(x, Mapping):
        d = {k: map_tensors(v, fn) for k, v in x.items()}
        try:
            return type(x)(d)
        except Exception:  # noqa: BLE001 - a mapping type without a dict constructor
            return d
    if isinstance(x, (tuple, list)):
        return type(x)(map_tensors(v, fn) for v in x)
    return x


def tensors(x: Any) -> Iterator[torch.Tensor]:
    """Every tensor of a nested batch, in order."""
    if isinstance(x, torch.Tensor):
        yield x
    elif _is_record(x):
        for v in _fields(x).values():
            yield from tensors(v)
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from tensors(v)


class Batches:
    """A re-iterable view of ``data`` yielding :class:`Batch` objects.

    Parameters
    ----------
    data : batch or iterable of batches
        See the module docstring. A one-shot iterator is read once and kept in memory.
    device : torch.device
        The model's device; batches elsewhere are refused unless ``move=True``.
    dtype : torch.dtype or None
        Floating tensors are cast to it (float64 evaluation of a float32 model).
    move : bool
        Move batches to ``device`` instead of refusing them.
    need_targets : bool
        Whether the loss takes a second argument (False for the NTK and Jacobian Gram,
        where targets are ignored).
    batch_format : {"auto", "args"}
        ``"args"``: tuples are positional model inputs.
    count : callable, optional
        ``count(batch) -> number of examples`` (default: the batch size).
    """

    def __init__(self, data: Any, *, device: torch.device, dtype: Any, move: bool,
                 need_targets: bool = True, batch_format: str = "auto",
                 count: Callable[[Batch], float] | None = None) -> None:
        self.batch_format = check_choice(batch_format, "batch_format", BATCH_FORMATS)
        self.single = is_single_batch(data, need_targets, batch_format)
        self.device = torch.device(device)
        self.dtype = dtype
        self.move = move
        self.need_targets = need_targets
        self.count = count
        if self.single:
            self._source: Any = [data]
        else:
            if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
                raise TypeError(
                    "data must be a batch ((inputs, targets), a mapping or dataclass of "
                    "keyword inputs, a tensor) or an iterable of batches (list, DataLoader), "
                    f"got {type(data).__name__}"
                )
            if iter(data) is data:  # one-shot iterator: keep its batches
                data = list(data)
            self._source = data
        self.sizes: list[int] | None = None
        self.counts: list[float] | None = None

    def __iter__(self) -> Iterator[Batch]:
        sizes, counts, guessed = [], [], None
        for b, item in enumerate(self._source):
            batch = self._unpack(b, item)
            sizes.append(batch.size)
            counts.append(batch.count)
            guessed = batch if guessed is None and batch.guessed else guessed
            yield batch
        if not sizes:
            raise ValueError("data is empty: the iterable yielded no batch")
        if guessed is not None and len(sizes) > 1:
            raise ValueError(
                f"cannot tell the number of samples of batch {guessed.index}: its input "
                f"tensors have leading dimensions {list(guessed.dims)}, and the batches are "
                "weighted by it; pass num_examples=callable(target) -> the number of "
                "examples the loss averages over"
            )
        if self.sizes is None:
            self.sizes, self.counts = sizes, counts
        elif sizes != self.sizes:
            raise RuntimeError(
                "the data changed between passes: batch sizes "
                f"{_short(self.sizes)} first, {_short(sizes)} now. Curvature operators need "
                "the same data on every pass (a DataLoader with a random sampler and "
                "drop_last, or a stream?); pass a fixed list of batches"
            )

    def first(self) -> Batch:
        """The first batch (without recording a pass)."""
        for b, item in enumerate(self._source):
            return self._unpack(b, item)
        raise ValueError("data is empty: the iterable yielded no batch")

    def _known(self) -> None:
        if self.sizes is None:
            for _ in self:
                pass

    @property
    def num_batches(self) -> int:
        """Batches in one pass (known after the first pass)."""
        self._known()
        return len(self.sizes)

    @property
    def num_samples(self) -> int:
        """Total samples of one pass (known after the first pass)."""
        self._known()
        return int(sum(self.sizes))

    @property
    def num_examples(self) -> float:
        """Total examples of one pass: the sum of the batch weights."""
        self._known()
        return float(sum(self.counts))

    def halves(self, batch: Batch) -> tuple[Batch, Batch] | None:
        """The batch split along its samples at a third, or ``None`` for one sample.

        Every tensor whose leading dimension is the batch size is split, others are kept
        whole. The split is unequal on purpose: a loss averaged over something other
        than samples (tokens, say) then shows.
        """
        n = batch.size
        if n < 2:
            return None
        cut = max(n // 3, 1)

        def part(sl: slice, size: int) -> Batch:
            def fn(t: torch.Tensor) -> torch.Tensor:
                return t[sl] if t.ndim and t.shape[0] == n else t

            inputs = map_tensors(batch.inputs, fn)
            # the loss of a non-pair batch gets the whole batch: the model's inputs
            target = inputs if batch.kind != "pair" else map_tensors(batch.target, fn)
            half = Batch(batch.index, inputs, target, size, float(size), batch.kind)
            if self.count is not None:
                half.count = float(self.count(half))
            return half

        return part(slice(0, cut), cut), part(slice(cut, n), n - cut)

    def _split(self, b: int, item: Any) -> tuple[str, Any, Any]:
        if self.batch_format == "args":
            if not isinstance(item, (tuple, list)):
                raise TypeError(f"batch {b} must be a tuple of positional inputs "
                                f"(batch_format='args'), got {type(item).__name__}")
            return "args", item, item
        if _is_record(item):
            return "kwargs", item, item
        if isinstance(item, torch.Tensor):
            return "tensor", item, item
        if isinstance(item, (tuple, list)) and len(item) == 2:
            return "pair", item[0], item[1]
        raise TypeError(
            f"batch {b} must be an (inputs, targets) pair, a mapping or dataclass of keyword "
            f"inputs, or a tensor, got {type(item).__name__}"
            + (f" of length {len(item)} (a tuple of positional inputs needs "
               "batch_format='args')" if isinstance(item, (tuple, list)) else "")
        )

    def _unpack(self, b: int, item: Any) -> Batch:
        kind, inputs, target = self._split(b, item)
        if not self.need_targets and kind == "pair" and target is not None:
            target = None  # ignored: the operator takes no targets
        if not any(True for _ in tensors(inputs)):
            raise TypeError(f"batch {b} contains no tensor among its model inputs")
        for t in (*tensors(inputs), *tensors(target)):
            if t.device != self.device and not self.move:
                raise ValueError(
                    f"batch {b} has a tensor on device {t.device} but the model is on "
                    f"device {self.device}; move the data (or pass move_data=True)"
                )
        inputs, target = self._fixed(inputs, target)
        first = next(tensors(inputs))
        size = int(first.shape[0]) if first.ndim else 1
        if size == 0:
            raise ValueError(f"batch {b} is empty (0 samples)")
        dims = sorted({int(t.shape[0]) for t in tensors(inputs) if t.ndim})
        batch = Batch(b, inputs, target, size, float(size), kind,
                      tuple(dims) if len(dims) > 1 else ())
        if self.count is not None:
            batch.count = float(self.count(batch))
        return batch

    def _fixed(self, inputs: Any, target: Any) -> tuple[Any, Any]:
        """Move and cast the batch's tensors; the loss sees the same object as the model."""
        dtype, move, device = self.dtype, self.move, self.device

        def fix(t: torch.Tensor) -> torch.Tensor:
            if move and t.device != device:
                t = t.to(device)
            if dtype is not None and t.is_floating_point() and t.dtype != dtype:
                t = t.to(dtype)
            return t

        needs = any((move and t.device != device)
                    or (dtype is not None and t.is_floating_point() and t.dtype != dtype)
                    for t in (*tensors(inputs), *tensors(target)))
        if not needs:
            return inputs, target
        same = target is inputs
        inputs = map_tensors(inputs, fix)
        return inputs, (inputs if same else map_tensors(target, fix))


def _short(sizes: list[int]) -> str:
    return str(sizes) if len(sizes) <= 6 else f"{sizes[:3]}...{sizes[-2:]} ({len(sizes)} batches)"
