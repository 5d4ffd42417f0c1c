"""The machinery shared by every curvature operator (private).

:class:`CurvatureOperator` owns the data passes (batch-size weighting, finiteness
checks with the batch index), the per-batch graph cache, chunking and the choice
between one ``vmap``-batched backward and a loop over probes, and the construction
check that two products with the same probe agree. Subclasses in
:mod:`hessian.curvature.operators` say how one batch's product is formed.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch
from torch import nn

from spectra.operators import Operator
from spectra.results import NonFiniteError
from spectra.validation import check_choice, check_int

from ._data import Batches
from ._losses import loss_kind, loss_reduction
from .model import ModelView, check_eval_mode

__all__ = ["CurvatureOperator"]

_MODES = ("auto", "autograd", "func")
_CHECK_RTOL = {torch.float32: 1e-4, torch.float64: 1e-9}


class _Ctx:
    """Per-batch state of a product: graphs, outputs, closures (no back-references)."""

    __slots__ = ("loss", "out", "grads", "u", "jtu", "vjp_fn", "jvp", "block", "hvp")


def _pick_mode(mode: str) -> str:
    if check_choice(mode, "mode", _MODES) != "auto":
        return mode
    return "autograd"  # measured best on CPU and CUDA (see hessian.operators)


class CurvatureOperator(Operator):
    """Base class: data passes, graph caching, batched products, validation.

    Subclasses implement ``_build(batch) -> _Ctx`` and ``_apply(ctx, Vt, batch)``,
    mapping a ``(p, P)`` block of probes (one per row) to its ``(p, P)`` image for one
    batch. See :class:`HessianOperator` for the parameters.
    """

    _symmetric = True
    _psd = True
    _needs_targets = True

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Any,
        data: Any,
        *,
        params: Any = None,
        dtype: torch.dtype | None = None,
        mode: str = "auto",
        reduction: str | None = None,
        check_deterministic: bool = True,
        cache_graph: bool | None = None,
        max_probes: int | None = None,
        batching: str = "auto",
        move_data: bool = False,
    ) -> None:
        self.view = ModelView(model, params, dtype)
        check_eval_mode(model)
        self.loss_fn = loss_fn
        self.reduction = loss_reduction(loss_fn, reduction) if self._needs_targets else "sum"
        self.loss_kind = loss_kind(loss_fn) if loss_fn is not None else "none"
        self.data = Batches(data, device=self.view.device, dtype=self.view.dtype,
                            move=move_data, need_targets=self._needs_targets)
        self.mode = _pick_mode(mode)
        self.cache_graph = self.data.single if cache_graph is None else bool(cache_graph)
        self.max_probes = (None if max_probes is None else
                           check_int(max_probes, "max_probes", low=1, hint=" (None: no cap)"))
        self.batching = check_choice(batching, "batching", ("auto", "vmap", "loop"))
        self.batching_times: dict[str, float] = {}
        self.progress = None  # callable(num_vectors) after each batch, set by helpers
        self._cache: dict[int, _Ctx] = {}
        # None: decide by measurement on the first block of >= 4 probes
        self._batched: bool | None = None if batching == "auto" else batching == "vmap"
        self._reverse_over_reverse = False
        self._vmap_failed = False
        n = self._dimension()
        super().__init__((n, n), self.view.dtype, device=self.view.device,
                         symmetric=self._symmetric, psd=self._psd, backend="torch")
        if check_deterministic:
            self.check_deterministic()

    # ------------------------------------------------------------------ public facts
    @property
    def model(self) -> nn.Module:
        """The module products are evaluated on (a private copy when ``dtype`` differs)."""
        return self.view.module

    @property
    def param_names(self) -> list[str]:
        """Names of the parameters the operator acts on, in the order of the flat vector."""
        return list(self.view.names)

    @property
    def num_params(self) -> int:
        """Number of scalar parameters ``P``."""
        return self.view.num_params

    @property
    def num_samples(self) -> int:
        """Samples in one pass over the data (sum of the batch sizes)."""
        return self.data.num_samples

    @property
    def batched(self) -> bool | None:
        """Whether blocks of probes go through one ``vmap``-batched backward.

        ``False``: a loop over probes on the same graph; ``None``: not decided yet
        (``batching="auto"`` measures both ways on the first block of four or more).
        """
        return self._batched

    def free(self) -> None:
        """Drop cached graphs (they are rebuilt on the next product)."""
        self._cache.clear()

    def loss(self) -> float:
        r"""The loss :math:`\mathcal L(\theta)` on the data, batches combined as in the products.

        Batch losses are weighted by batch size for ``reduction="mean"`` and added for
        ``"sum"``; evaluated without a graph at the current parameters.

        Returns
        -------
        float

        Raises
        ------
        TypeError
            For an operator without a loss (:class:`~hessian.JacobianGramOperator`,
            :class:`~hessian.NTKOperator`).
        """
        if not self._needs_targets:
            raise TypeError(f"{type(self).__name__} has no loss (it takes no targets)")
        acc, total = 0.0, 0
        with torch.no_grad():
            for batch in self.data:
                L = float(self._loss(self.view.call(batch.inputs), batch))
                acc += L * (batch.size if self.reduction == "mean" else 1)
                total += batch.size
        return acc / total if self.reduction == "mean" else acc

    def _dimension(self) -> int:
        return self.view.num_params

    # ------------------------------------------------------------------ products
    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        V = self._prepare(V)
        p = V.shape[1]
        blocks = []
        if self._batched is None and p >= 4:  # measure loop vs batched on the first block
            k = min(p // 2, 8)
            blocks += self._measure(V[:, :2 * k])
            V = V[:, 2 * k:]
            p = V.shape[1]
        step = self.max_probes or max(p, 1)
        blocks += [self._pass(V[:, i:i + step].T.contiguous()) for i in range(0, p, step)]
        out = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=0)
        return out.T

    def _measure(self, V: torch.Tensor) -> list[torch.Tensor]:
        """Apply half of ``V`` probe by probe and half batched; keep the faster way."""
        k = V.shape[1] // 2
        if self.cache_graph:  # build the cached graphs first: time products only
            for batch in self.data:
                self._context(batch, fresh=False)
        out, times = [], []
        for batched, cols in ((False, V[:, :k]), (True, V[:, k:])):
            self._batched = batched
            _sync(self.view.device)
            t = time.perf_counter()
            out.append(self._pass(cols.T.contiguous()))
            _sync(self.view.device)
            times.append(time.perf_counter() - t)
        self._batched = times[1] < times[0] and not self._vmap_failed
        self.batching_times = {"loop": times[0] / k, "vmap": times[1] / k}
        return out

    def _prepare(self, V: torch.Tensor) -> torch.Tensor:
        if not isinstance(V, torch.Tensor):
            raise TypeError(f"curvature operators take torch tensors, got {type(V).__name__}")
        if V.device != self.view.device:
            raise ValueError(f"the probe is on {V.device}, the operator on {self.view.device}")
        if V.dtype != self.view.dtype:
            V = V.to(self.view.dtype)
        return V.detach()

    def _context(self, batch, fresh: bool) -> _Ctx:
        if self.cache_graph and not fresh and batch.index in self._cache:
            return self._cache[batch.index]
        self._cache.pop(batch.index, None)
        ctx = self._build(batch)
        if self.cache_graph:
            self._cache[batch.index] = ctx
        return ctx

    def _pass(self, Vt: torch.Tensor, fresh: bool = False) -> torch.Tensor:
        """One pass over the data: the weighted sum of the batch products, ``(p, P)``."""
        acc = None
        sums, losses = [], []
        total, w0 = 0, 1.0
        for batch in self.data:
            ctx = self._context(batch, fresh)
            y = self._apply(ctx, Vt, batch)  # a new tensor: accumulate into the first
            w = float(batch.size) if self.reduction == "mean" else 1.0
            if acc is None:  # weights relative to the first batch's: one batch, no scaling
                acc, w0 = y, w
            else:
                acc.add_(y, alpha=w / w0)
            sums.append(y.sum())
            losses.append(ctx.loss)
            total += batch.size
            del ctx, y
            if self.progress is not None:
                self.progress(Vt.shape[0])
        self._raise_nonfinite(sums, losses, acc)
        scale = w0 / total if self.reduction == "mean" else 1.0
        return acc if scale == 1.0 else acc.mul_(scale)

    @staticmethod
    def _raise_nonfinite(sums: list, losses: list, result: torch.Tensor) -> None:
        """Raise, naming the batch, when a batch product held NaN or Inf.

        ``sums`` are the batch products' sums: a finite sum proves every entry finite
        (NaN or Inf in a sum's terms leaves it NaN or Inf), at the cost of one reduction
        instead of an elementwise test; a non-finite sum of finite entries (overflow)
        leaves ``result`` finite and is not an error.
        """
        ok = torch.isfinite(torch.stack(sums)).cpu()
        if bool(ok.all()) or bool(torch.isfinite(result).all()):
            return
        b = int((~ok).nonzero()[0, 0])
        loss = losses[b]
        what = ""
        if loss is not None and not bool(torch.isfinite(loss).all()):
            what = f" (the loss itself is {float(loss)} there)"
        raise NonFiniteError(
            f"NaN or Inf in the curvature product at batch {b}{what}; check the data and "
            "the model (overflow in float32? try dtype=torch.float64)"
        )

    def _loss(self, out: Any, batch) -> torch.Tensor:
        L = self.loss_fn(out, batch.targets)
        if not isinstance(L, torch.Tensor) or L.numel() != 1 or L.ndim > 1:
            shape = tuple(L.shape) if isinstance(L, torch.Tensor) else type(L).__name__
            raise ValueError(
                f"loss_fn must return a scalar tensor, got {shape} at batch {batch.index}; "
                "use reduction='mean' (or 'sum')"
            )
        return L.reshape(())

    # ------------------------------------------------------------------ autograd helpers
    def _grad(self, outputs: list, inputs: list, grad_outputs: list, p: int) -> list:
        """Batched vector-Jacobian products; ``grad_outputs`` have a leading probe axis."""
        if p == 1:
            res = torch.autograd.grad(outputs, inputs, [g[0] for g in grad_outputs],
                                      retain_graph=True, allow_unused=True)
            return [None if r is None else r[None] for r in res]
        if self._batched is not False:
            try:
                return list(torch.autograd.grad(outputs, inputs, grad_outputs,
                                                retain_graph=True, allow_unused=True,
                                                is_grads_batched=True))
            except RuntimeError as err:  # an op without a batching rule
                warnings.warn(f"batched backward failed ({err}); falling back to a loop over "
                              "probes", UserWarning, stacklevel=4)
                self._batched = False
                self._vmap_failed = True
        cols = [torch.autograd.grad(outputs, inputs, [g[j] for g in grad_outputs],
                                    retain_graph=True, allow_unused=True) for j in range(p)]
        return [None if cols[0][i] is None else torch.stack([c[i] for c in cols])
                for i in range(len(inputs))]

    def _vmap(self, fn, T: Any, p: int):
        def col(j: int) -> Any:
            return {k: v[j] for k, v in T.items()} if isinstance(T, dict) else T[j]

        if p == 1:
            return _unsqueeze(fn(col(0)))
        if self._batched is not False:
            return torch.func.vmap(fn)(T)
        return _stack([fn(col(j)) for j in range(p)])

    # ------------------------------------------------------------------ validation
    def check_deterministic(self) -> None:
        """Apply the operator twice to one probe; raise when the products differ.

        Run at construction unless ``check_deterministic=False``; catches stochastic
        layers left in train mode, data that changes between passes and
        non-deterministic kernels. The two products are not counted in
        :attr:`num_matvecs`.

        Raises
        ------
        RuntimeError
            When the products differ by more than 1e-4 (float32) or 1e-9 (float64)
            relative to their norm.
        """
        g = torch.Generator(device="cpu").manual_seed(20240601)
        z = torch.randint(0, 2, (1, self.shape[0]), generator=g).to(self.view.dtype) * 2 - 1
        z = z.to(self.view.device)
        y1 = self._pass(z, fresh=True)
        y2 = self._pass(z, fresh=True)
        scale = float(torch.linalg.vector_norm(y1))
        diff = float(torch.linalg.vector_norm(y1 - y2))
        if diff > _CHECK_RTOL[self.view.dtype] * max(scale, 1e-300):
            raise RuntimeError(
                f"two products with the same probe differ (relative difference "
                f"{diff / max(scale, 1e-300):.2e}). Likely causes: stochastic layers in train "
                "mode (custom dropout, noise; call model.eval()), data that changes between "
                "passes (random augmentation, a sampler that draws new data), or "
                "non-deterministic kernels. Pass check_deterministic=False to skip this check."
            )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stack(results: list) -> Any:
    first = results[0]
    if isinstance(first, dict):
        return {k: torch.stack([r[k] for r in results]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([r[i] for r in results]) for i in range(len(first)))
    return torch.stack(results)


def _unsqueeze(res: Any) -> Any:
    if isinstance(res, dict):
        return {k: v[None] for k, v in res.items()}
    if isinstance(res, (tuple, list)):
        return type(res)(_unsqueeze(r) for r in res)
    return res[None]
