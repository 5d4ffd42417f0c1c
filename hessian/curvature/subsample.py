r"""Curvature of the whole data set from data subsamples, by free decompression.

For a loss that averages per-sample losses :math:`\ell_i(f(x_i;\theta))` over ``N``
samples, the GGN, the empirical Fisher and the Jacobian Gram share one form,

.. math:: G = s \sum_{i=1}^N J_i^T M_i J_i = s\, J^T L L^T J, \qquad
          M_i = L_i L_i^T,

with :math:`J_i` the ``C x P`` Jacobian of sample ``i``'s outputs, :math:`M_i` the
Hessian of :math:`\ell_i` in the outputs (``kind="ggn"``), :math:`g_i g_i^T` with
:math:`g_i = \nabla_f \ell_i` (``"fisher"``, empirical) or the identity (``"ntk"``, whose
parameter-space side is :math:`J^T J`), and ``s = 1/N`` for ``reduction="mean"``
(1 for ``"sum"`` and the NTK). Its nonzero eigenvalues are ``s`` times those of the
*data-space Gram* :math:`K = L^T J J^T L` (``N r x N r``, ``r`` the rank of the
factors: ``C - 1`` for cross-entropy), and the principal block of ``K`` on a subsample of
data points is the data-space Gram of that subsample -- a matrix of ``m r`` rows whose
products pass over the ``m`` subsampled points only. :func:`data_blocks` is that block
sampler; :func:`extrapolated_density` decompresses it to ``N r``
(:func:`freedecomp.decompress`, blocks fed by :mod:`freedecomp.blocks`) and maps the law
back to parameter space (:func:`freedecomp.blocks.embed`): the nonzero part scaled by
``s`` with mass ``rank / P``, an atom at zero of mass ``1 - rank / P``.

Sampling by data points keeps each point's ``r`` rows together: a block-structured
principal submatrix, exchangeable over points rather than over rows. For i.i.d. data
this is the compression free decompression models (:doc:`/theory/free_decompression`),
and the tests check the result against the dense full-data GGN.

With ``group=`` (a ``torch.distributed`` process group) each rank holds a shard of the
data (as in :mod:`hessian.curvature.distributed`); subsample indices run over the
concatenated shards, each rank computes the Jacobian products of the points it holds,
and one ``all_reduce`` in parameter space and one in data space give every rank the
same product.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from spectra.operators import Operator
from spectra.validation import check_choice, check_int

from .model import select_output
from .operators import NTKOperator

__all__ = ["DataBlocks", "DataGramOperator", "data_blocks", "extrapolated_density"]

KINDS = ("ggn", "fisher", "ntk")


def _points(data: Any, kind: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(X, y)`` tensors with samples on dimension 0 (a pair, or inputs for the NTK)."""
    if isinstance(data, torch.Tensor):
        if kind != "ntk":
            raise TypeError(f"kind={kind!r} needs targets: pass data=(inputs, targets)")
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        X, y = data
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"inputs and targets disagree on the number of samples: "
                             f"{X.shape[0]} and {y.shape[0]}")
        return X, y
    raise TypeError("data must be one (inputs, targets) pair of tensors with samples on "
                    "dimension 0 (or an inputs tensor for kind='ntk'); concatenate batches "
                    f"first, got {type(data).__name__}")


class DataBlocks:
    """Block sampler of the data-space Gram ``K`` (module docstring) over data points.

    Build it with :func:`data_blocks`; ``sampler(indices)`` returns the
    :class:`DataGramOperator` on those points (``len(indices) * rows_per_index`` rows).

    Attributes
    ----------
    total : int
        Data points ``N`` (over all ranks with ``group=``).
    rows_per_index : int
        ``r``: rows of ``K`` per data point.
    num_params : int
        ``P``.
    scale : float
        ``s``: the parameter-space curvature's nonzero eigenvalues are ``s`` times ``K``'s.
    psd : bool
        Always True.
    """

    psd = True

    def __init__(self, model: Any, loss_fn: Any, data: Any, *, kind: str = "ggn",
                 output: Any = None, group: Any = None, batch_size: int = 1024,
                 **kwargs: Any) -> None:
        self.kind = check_choice(kind, "kind", KINDS)
        self.model, self.loss_fn, self.output, self.group = model, loss_fn, output, group
        self.kwargs = kwargs
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.X, self.y = _points(data, self.kind)
        self._offset, self.total = self._global_layout()
        self.factors = self._factors()
        self.rows_per_index = int(self.factors.shape[2])
        probe = NTKOperator(model, self.X[:1], output=output, check_deterministic=False,
                            **kwargs)
        self.num_params = probe.num_params
        reduction = getattr(loss_fn, "reduction", "mean") if self.kind != "ntk" else "sum"
        check_choice(reduction, "the loss's reduction", ("mean", "sum"))
        self.scale = 1.0 / self.total if reduction == "mean" else 1.0

    @property
    def block_options(self) -> dict:
        """Defaults for :func:`freedecomp.blocks.block_spectrum`: PSD, rank at most ``P``."""
        return {"psd": True, "rank": self.num_params}

    def _global_layout(self) -> tuple[int, int]:
        """First global index of the points held here, and the global number of points."""
        n = int(self.X.shape[0])
        if self.group is None:
            return 0, n
        import torch.distributed as dist

        sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(dist.get_world_size(
            self.group))]
        dist.all_gather(sizes, torch.tensor([n]), group=self.group)
        sizes = [int(s) for s in sizes]
        rank = dist.get_rank(self.group)
        return int(sum(sizes[:rank])), int(sum(sizes))

    def _outputs(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            parts = [select_output(self.model(X[i:i + self.batch_size]), self.output, 0)
                     for i in range(0, X.shape[0], self.batch_size)]
        out = torch.cat(parts)
        return out.reshape(out.shape[0], -1)

    def _factors(self) -> torch.Tensor:
        """``L_i`` for every local point, ``(n, C, r)``, ``r`` the largest rank of ``M_i``."""
        out = self._outputs(self.X).double()
        n, C = out.shape
        if self.kind == "ntk":
            return torch.eye(C, dtype=self.X.dtype).expand(n, C, C)
        loss_fn = self.loss_fn

        def ell(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return loss_fn(o[None], t[None])

        y = self.y.double() if self.y.is_floating_point() else self.y
        if self.kind == "fisher":
            g = torch.func.vmap(torch.func.grad(ell))(out, y)
            return g[:, :, None].to(self.X.dtype)
        M = torch.func.vmap(torch.func.hessian(ell))(out, y)
        s, U = torch.linalg.eigh(0.5 * (M + M.transpose(1, 2)))
        if bool((s < -1e-8 * s.abs().amax(1, keepdim=True)).any()):
            raise ValueError("the loss is not convex in the outputs at some sample: its GGN "
                             "is indefinite and has no data-space Gram")
        s = s.clamp(min=0.0)
        rank = int((s > 1e-10 * s.amax(1, keepdim=True)).sum(1).max())
        rank = self._max_over_ranks(max(rank, 1))
        L = U[:, :, -rank:] * s[:, None, -rank:].sqrt()
        return L.to(self.X.dtype)

    def _max_over_ranks(self, r: int) -> int:
        if self.group is None:
            return r
        import torch.distributed as dist

        t = torch.tensor([r])
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return int(t)

    def __call__(self, indices: Any) -> DataGramOperator:
        """The data-space Gram of the points ``indices`` (distinct, in ``[0, N)``)."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("indices must be a non-empty 1-d integer array")
        if idx.min() < 0 or idx.max() >= self.total or np.unique(idx).size != idx.size:
            raise ValueError(f"indices must be distinct and lie in [0, {self.total})")
        return DataGramOperator(self, idx)

    def __repr__(self) -> str:
        return (f"DataBlocks(kind={self.kind!r}, points={self.total}, "
                f"rows_per_index={self.rows_per_index}, params={self.num_params})")


class DataGramOperator(Operator):
    r"""The data-space Gram :math:`L_S^T J_S J_S^T L_S` of a data subsample ``S``.

    Rows are (point, factor column) pairs, point-major, points in the order of the
    indices. A product is one pass of Jacobian-transpose products and one of Jacobian
    products over the points of ``S`` this rank holds (:class:`~hessian.NTKOperator`'s
    machinery), with an ``all_reduce`` after each under ``group``.
    """

    def __init__(self, blocks: DataBlocks, indices: np.ndarray) -> None:
        self.blocks = blocks
        self.indices = indices
        lo, n_loc = blocks._offset, blocks.X.shape[0]
        local = (indices >= lo) & (indices < lo + n_loc)
        self._pos = torch.as_tensor(np.flatnonzero(local))
        rows = torch.as_tensor(indices[local] - lo)
        self._L = blocks.factors[rows]
        self._m, self._r = int(indices.size), blocks.rows_per_index
        Xs = blocks.X[rows]
        bs = blocks.batch_size
        data = [Xs[i:i + bs] for i in range(0, Xs.shape[0], bs)] or [Xs]
        self._ntk = (NTKOperator(blocks.model, data, output=blocks.output,
                                 check_deterministic=False, **blocks.kwargs)
                     if Xs.shape[0] else None)
        dim = self._m * self._r
        super().__init__((dim, dim), blocks.X.dtype, device=blocks.X.device, symmetric=True,
                         psd=True, backend="torch")

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        p, m, r = V.shape[1], self._m, self._r
        out = V.new_zeros(m, r, p)
        if self._ntk is not None:
            U = V.reshape(m, r, p)[self._pos]
            W = torch.einsum("mcr,mrp->mcp", self._L, U)
            C = W.shape[1]
            Y = self._two_passes(W.reshape(-1, p), p).reshape(-1, C, p)
            out[self._pos] = torch.einsum("mcr,mcp->mrp", self._L, Y)
        if self.blocks.group is not None:
            import torch.distributed as dist

            dist.all_reduce(out, group=self.blocks.group)
        return out.reshape(m * r, p)

    def _two_passes(self, W: torch.Tensor, p: int) -> torch.Tensor:
        """``J J^T W`` on the local points, the parameter vector summed over ranks."""
        op = self._ntk
        offsets = np.concatenate([[0], np.cumsum(op._rows)])
        t = W.new_zeros(p, op.view.num_params)
        for batch in op.data:
            ctx = op._context(batch, False)
            rows = W[offsets[batch.index]:offsets[batch.index + 1]].T
            op._add(t, op._vjp(ctx, op._embed(rows, ctx.out), p), 1.0)
        if self.blocks.group is not None:
            import torch.distributed as dist

            dist.all_reduce(t, group=self.blocks.group)
        Ts = op.view.split(t)
        Y = W.new_empty(W.shape)
        for batch in op.data:
            ctx = op._context(batch, False)
            Y[offsets[batch.index]:offsets[batch.index + 1]] = op._select(
                op._jvp(ctx, Ts, p)).T
        if not bool(torch.isfinite(Y).all()):
            from spectra.results import NonFiniteError

            raise NonFiniteError("a data-space Gram product returned NaN or Inf")
        return Y


def data_blocks(model: Any, loss_fn: Any, data: Any, *, kind: str = "ggn",
                output: Any = None, group: Any = None, batch_size: int = 1024,
                **kwargs: Any) -> DataBlocks:
    """Block sampler of a model's data-space curvature Gram over data points.

    Parameters
    ----------
    model : torch.nn.Module or callable ``model(inputs) -> outputs``
    loss_fn : callable
        Per-sample losses are ``loss_fn(f_i[None], y_i[None])`` and the loss is their mean
        (``reduction="mean"``, default) or sum; ignored for ``kind="ntk"``.
    data : (inputs, targets) pair of tensors
        Samples on dimension 0 (inputs only for ``kind="ntk"``); under ``group`` this
        rank's shard.
    kind : {"ggn", "fisher", "ntk"}
        GGN, empirical Fisher, or the NTK (parameter side: the Jacobian Gram ``J^T J``).
    output : optional
        Picks the outputs from the model's return (as for :class:`hessian.GGNOperator`).
    group : torch.distributed ProcessGroup, optional
        Products summed over ranks (module docstring).
    batch_size : int
        Points per forward pass.
    **kwargs
        Operator options passed to :class:`~hessian.NTKOperator` (``dtype``, ``mode``,
        ``params``...).
    """
    return DataBlocks(model, loss_fn, data, kind=kind, output=output, group=group,
                      batch_size=batch_size, **kwargs)


def extrapolated_density(model: Any, loss_fn: Any = None, data: Any = None, *,
                         kind: str = "ggn", sample_size: int, num_samples: int = 4,
                         rng: Any = None, group: Any = None, blocks: dict | None = None,
                         output: Any = None, **options: Any) -> Any:
    r"""The full-data curvature spectrum from data subsamples, with bands and warnings.

    Draws ``num_samples`` subsamples of ``sample_size`` points, estimates each one's
    data-space Gram spectrum (dense up to :data:`freedecomp.blocks.DENSE_MAX` rows,
    deflated SLQ above), decompresses them to the whole data set
    (:func:`freedecomp.decompress`) and maps the law to parameter space (module
    docstring). Products pass over the subsampled points only.

    Parameters
    ----------
    model, loss_fn, data, kind, group, output
        As for :func:`data_blocks`.
    sample_size : int
        Points per subsample ``m``, ``16 / r <= m < N``.
    num_samples : int
        Subsamples (bands come from their spread).
    rng : None, int or numpy Generator
        Subsample indices and probes. Under ``group``, call on every rank with the same
        seed: every rank then draws the same subsamples and probes and, the products
        being all-reduced, returns the same result.
    blocks : dict, optional
        Block-estimation options (``num_probes``, ``num_steps``, ``rtol``, ``dense_max``;
        :func:`freedecomp.blocks.block_spectrum`: by default the SLQ budget adapts to
        ``rtol``).
    **options
        Passed to :func:`freedecomp.decompress` (``method``, ``grid``, ``repeats``...).

    Returns
    -------
    freedecomp.Decompression
        The parameter-space law (``size = P``): ``x``/``rho``/``atoms`` (the atom at zero
        of mass ``1 - rank/P``), ``bands``, ``diagnostics`` (warnings, block estimates),
        ``trace()``, ``eigenvalues()``.

    Raises
    ------
    ValueError
        ``sample_size`` at or above the number of points, or too small for a fit.
    """
    from freedecomp import decompress
    from freedecomp.blocks import embed

    sampler = data_blocks(model, loss_fn, data, kind=kind, output=output, group=group)
    N, r = sampler.total, sampler.rows_per_index
    m = check_int(sample_size, "sample_size", low=1, high=N - 1,
                  hint=f" (the data has {N} points; a subsample must be smaller)")
    if m * r < 32:
        raise ValueError(f"sample_size={m} gives a block of {m * r} rows ({r} per point); "
                         f"free decompression needs at least 32: use sample_size >= "
                         f"{-(-32 // r)}")
    res = decompress(sampler, N * r, n=m, total=N, rng=rng, num_samples=num_samples,
                     blocks=blocks, **options)
    note = None
    if N * r > sampler.num_params:
        note = (f"the data-space Gram ({N * r} rows) exceeds the {sampler.num_params} "
                "parameters: the curvature's rank is at most P, read off the decompressed "
                "atom at zero")
    return embed(res, scale=sampler.scale, size=sampler.num_params, note=note)
