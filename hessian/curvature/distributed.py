r"""Data-parallel curvature products over ``torch.distributed`` (gloo on CPU, nccl on GPU).

Each rank holds a shard of the data and builds the ordinary curvature operator on it;
:class:`DistributedOperator` applies it and sums the results with one ``all_reduce``,
weighting each rank by its share of the examples (samples, or counted targets):

.. math:: H v = \sum_r \frac{n_r}{n} H_r v, \qquad n = \sum_r n_r

(plain sums for ``reduction="sum"`` losses and the Jacobian Gram), which is exactly the
operator of the whole data set, uneven shards included. Every rank receives the same
product, so an estimator run on every rank with the same random probes (a shared seed,
:func:`shared_seed`) takes the same steps and returns the same answer everywhere: one
Lanczos, run in lockstep. The helpers :func:`top_eigenvalues`, :func:`trace`,
:func:`diagonal` and :func:`density` do this in one call; call them on every rank.

A failure on one rank (NaN in a product, a bad batch) is announced to all ranks with
a small extra ``all_reduce`` so that none is left waiting in a collective.

Examples
--------
On each of the ``world_size`` processes, after ``torch.distributed.init_process_group``::

    shard = my_batches(rank)                     # this rank's (inputs, targets) batches
    res = hessian.distributed.top_eigenvalues(model, loss_fn, shard, k=1, rng=0)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from spectra.operators import Operator

from . import spectrum as _spectrum
from .operators import CurvatureOperator, NTKOperator

__all__ = [
    "DistributedOperator",
    "density",
    "diagonal",
    "distributed_operator",
    "shared_seed",
    "top_eigenvalues",
    "trace",
]


def _require_initialized() -> None:
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "torch.distributed is not initialised; call torch.distributed.init_process_group"
            "(backend='gloo' or 'nccl', ...) on every rank first"
        )


class DistributedOperator(Operator):
    """The all-reduced, sample-weighted sum of per-rank curvature operators.

    Parameters
    ----------
    local : CurvatureOperator
        This rank's operator (on its data shard); same model and parameters on every
        rank. Not :class:`~hessian.NTKOperator` (its sample space is not shared).
    group : ProcessGroup, optional
        Default: the world.

    Attributes
    ----------
    num_examples : float
        Examples over all ranks (samples, or counted targets and tokens).
    weight : float
        This rank's weight ``n_r / n`` (1 for sum-reduced operators).
    """

    def __init__(self, local: CurvatureOperator, *, group: Any = None) -> None:
        _require_initialized()
        if isinstance(local, NTKOperator):
            raise TypeError("the NTK lives in sample space and cannot be summed over ranks")
        if not isinstance(local, CurvatureOperator):
            raise TypeError(
                f"local must be a hessian curvature operator, got {type(local).__name__}"
            )
        self.local = local
        self.group = group
        dev = local.device
        if local.reduction is None:
            raise ValueError(
                "the reduction of the loss is unknown (the probe on a batch and its parts "
                "was inconclusive) and the ranks' shards are weighted by it: pass "
                "reduction='mean' (with num_examples=...) or reduction='sum'"
            )
        info = torch.tensor([float(local.num_examples), float(local.shape[0]), 1.0],
                            dtype=torch.float64, device=dev)
        gathered = [torch.zeros_like(info) for _ in range(dist.get_world_size(group))]
        dist.all_gather(gathered, info, group=group)
        dims = {int(t[1]) for t in gathered}
        if len(dims) != 1:
            raise ValueError(f"ranks disagree on the operator dimension: {sorted(dims)}; "
                             "use the same model and params on every rank")
        self.num_examples = float(sum(float(t[0]) for t in gathered))
        self.weight = (local.num_examples / self.num_examples if local.reduction == "mean"
                       else 1.0)
        super().__init__(local.shape, local.dtype, device=dev, symmetric=local.symmetric,
                         psd=local.psd, backend="torch")

    # progress bars and facts are the local operator's
    @property
    def progress(self) -> Any:
        """Progress callback (forwarded to the local operator)."""
        return self.local.progress

    @progress.setter
    def progress(self, fn: Any) -> None:
        self.local.progress = fn

    @property
    def data(self) -> Any:
        """The batches of this rank."""
        return self.local.data

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        failed = torch.zeros(1, dtype=torch.float64, device=self.device)
        error = None
        try:
            Y = self.local._matmat(V) * self.weight
        except Exception as err:  # tell the other ranks before raising
            error = err
            failed += 1
            Y = None
        dist.all_reduce(failed, group=self.group)
        if error is not None:
            raise error
        if float(failed) > 0:
            raise RuntimeError(f"the curvature product failed on {int(failed)} other rank(s)")
        Y = Y.contiguous()
        dist.all_reduce(Y, group=self.group)
        return Y


def shared_seed(rng: Any = None, *, group: Any = None) -> Any:
    """A seed every rank agrees on.

    Parameters
    ----------
    rng : None or int or Generator
        An int (or a generator) is returned unchanged: the caller passes the same one on
        every rank. ``None`` draws a fresh seed on rank 0 and broadcasts it.

    Returns
    -------
    int or Generator
    """
    if rng is not None:
        return rng
    _require_initialized()
    seed = torch.zeros(1, dtype=torch.int64)
    if dist.get_rank(group) == 0:
        seed[0] = int.from_bytes(os.urandom(8), "little") % 2**62
    backend = dist.get_backend(group)
    dev = "cuda" if backend == "nccl" else "cpu"
    seed = seed.to(dev)
    dist.broadcast(seed, src=dist.get_global_rank(group, 0) if group is not None else 0,
                   group=group)
    return int(seed.item())


def distributed_operator(model: Any, loss_fn: Any = None, data: Any = None, *,
                         kind: str = "hessian", group: Any = None,
                         **kwargs: Any) -> DistributedOperator:
    """Build this rank's operator on its shard ``data`` and wrap it for all-reduce.

    Parameters
    ----------
    model, loss_fn, data, kind, **kwargs
        As for :func:`hessian.curvature_operator`; ``data`` is this rank's shard.
    group : ProcessGroup, optional

    Returns
    -------
    DistributedOperator
    """
    if isinstance(model, DistributedOperator):
        return model
    local = _spectrum.curvature_operator(model, loss_fn, data, kind=kind, **kwargs)
    return DistributedOperator(local, group=group)


def _quiet(progress: Any, group: Any) -> Any:
    return progress if dist.get_rank(group) == 0 else False


_OPERATOR_KEYS = ("kind", "params", "output", "dtype", "mode", "reduction", "num_examples",
                  "batch_format", "allow_train_mode", "check_deterministic", "cache_graph",
                  "max_probes", "batching", "move_data", "generator", "mc_samples")


def _op_kwargs(kwargs: dict) -> dict:
    """Split operator options out of ``kwargs`` (in place), leaving estimator options."""
    return {key: kwargs.pop(key) for key in _OPERATOR_KEYS if key in kwargs}


def _over_ranks(helper: Callable[..., Any]) -> Callable[..., Any]:
    """The one-call ``helper`` of :mod:`hessian.curvature.spectrum`, run over all ranks.

    The returned function builds this rank's operator on its shard, wraps it in a
    :class:`DistributedOperator` and calls ``helper`` on it with a seed shared by every
    rank and the progress bar on rank 0 only; the helper's body is not repeated.
    """
    name = helper.__name__

    def over_ranks(model: Any, loss_fn: Any = None, data: Any = None, *args: Any,
                   group: Any = None, rng: Any = None, progress: bool | None = None,
                   **kwargs: Any) -> Any:
        op = distributed_operator(model, loss_fn, data, group=group, **_op_kwargs(kwargs))
        return helper(op, None, None, *args, rng=shared_seed(rng, group=group),
                      progress=_quiet(progress, group), **kwargs)

    sig = inspect.signature(helper)
    params = [q for q in sig.parameters.values() if q.name != "per_layer"]
    at = next(i for i, q in enumerate(params) if q.kind is q.VAR_KEYWORD)
    params.insert(at, inspect.Parameter("group", inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation="Any"))
    over_ranks.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    over_ranks.__name__ = over_ranks.__qualname__ = name
    over_ranks.__module__ = __name__
    over_ranks.__doc__ = (
        f":func:`hessian.{name}` over all ranks (call on every rank; same answer).\n\n"
        "Parameters\n----------\n"
        f"model, loss_fn, data, **kwargs\n    As for :func:`hessian.{name}`; ``data`` is "
        "this rank's shard (``per_layer`` is not supported).\n"
        "group : ProcessGroup, optional\n    Default: the world.\n"
        "rng : None, int or Generator\n    The same on every rank; ``None`` draws one "
        "seed on rank 0 and broadcasts it (:func:`shared_seed`).\n"
        "progress : bool or None\n    Shown on rank 0 only.\n"
    )
    return over_ranks


top_eigenvalues = _over_ranks(_spectrum.top_eigenvalues)
trace = _over_ranks(_spectrum.trace)
diagonal = _over_ranks(_spectrum.diagonal)
density = _over_ranks(_spectrum.density)
