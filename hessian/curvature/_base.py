"""The machinery shared by every curvature operator (private).

:class:`CurvatureOperator` owns the data passes (batch weights, finiteness checks with
the batch index), the per-batch graph cache, chunking, the loop-or-``vmap`` rule for
blocks of probes, the reduction probe, the errors that name their fix, and the
construction check that two products with the same probe agree. Subclasses in
:mod:`hessian.curvature.operators` say how one batch's product is formed
(``_build(batch) -> _Ctx`` and ``_product(ctx, Vs, p, batch)``).

Products accumulate in place: each batch's per-parameter results are added into the
``(p, P)`` result block, probe by probe in the loop, so a product keeps no copy of the
probes or of the result beyond one probe's worth.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from spectra.operators import Operator
from spectra.results import NonFiniteError
from spectra.validation import check_bool, check_choice, check_int

from ._data import Batch, Batches
from ._losses import LossSpec, probe_reduction
from .model import ModelView, check_eval_mode

__all__ = ["CurvatureOperator"]

_MODES = ("auto", "autograd", "func")
_CHECK_RTOL = {torch.float32: 1e-4, torch.float64: 1e-9}
_SDPA_FIX = (
    "the model calls torch.nn.functional.scaled_dot_product_attention with a fused kernel "
    "(flash or memory-efficient attention), which has no second derivative. Load "
    "transformers models with attn_implementation=\"eager\", or build and use the operator "
    "under the math backend: with torch.nn.attention.sdpa_kernel("
    "torch.nn.attention.SDPBackend.MATH): ..."
)
_COMPILE_FIX = (
    "part of the model is compiled with torch.compile, whose graphs have no double backward; "
    "pass the modules before compiling (compiled._orig_mod: the same parameters)"
)


class _Ctx:
    """Per-batch state of a product: graphs, outputs, closures (no back-references)."""

    __slots__ = ("loss", "out", "grads", "u", "jtu", "vjp_fn", "jvp", "block", "hvp")


@contextmanager
def _explained() -> Iterator[None]:
    """Re-raise the runtime errors that have a known fix with the fix in the message."""
    try:
        yield
    except RuntimeError as err:
        msg = str(err)
        if "scaled_dot_product" in msg or "flash_attention" in msg or "efficient_attention" in msg:
            raise RuntimeError(f"{_SDPA_FIX} (torch: {msg[:160]})") from err
        if "double backward" in msg and ("compile" in msg or "aot_autograd" in msg):
            raise RuntimeError(f"{_COMPILE_FIX} (torch: {msg[:160]})") from err
        raise


def _no_autocast(device: torch.device) -> Any:
    try:
        on = torch.is_autocast_enabled(device.type)
    except (RuntimeError, TypeError):
        on = False
    return torch.autocast(device.type, enabled=False) if on else None


class CurvatureOperator(Operator):
    """Base class: data passes, graph caching, batched products, validation.

    See :class:`~hessian.HessianOperator` for the parameters.
    """

    _symmetric = True
    _psd = True
    _needs_targets = True
    _checks_finite = True  # each pass raises NonFiniteError naming the batch (_pass)

    def __init__(
        self,
        model: Any,
        loss_fn: Any,
        data: Any,
        *,
        params: Any = None,
        output: Any = None,
        dtype: torch.dtype | None = None,
        mode: str = "auto",
        reduction: str | None = None,
        num_examples: Any = None,
        batch_format: str = "auto",
        allow_train_mode: bool = False,
        check_deterministic: bool = True,
        cache_graph: bool | None = None,
        max_probes: int | None = None,
        batching: str = "auto",
        move_data: bool = False,
    ) -> None:
        allow_train_mode = check_bool(allow_train_mode, "allow_train_mode")
        self.view = ModelView(model, params, dtype, allow_train_mode=allow_train_mode)
        check_eval_mode(model, allow_train_mode)
        self.loss_fn = loss_fn
        self.spec = LossSpec(loss_fn if self._needs_targets else None, output=output,
                             reduction=reduction, num_examples=num_examples)
        self.data = Batches(data, device=self.view.device, dtype=self.view.dtype,
                            move=check_bool(move_data, "move_data"),
                            need_targets=self._needs_targets, batch_format=batch_format,
                            count=self.spec.count if self._needs_targets else None)
        self.mode = "autograd" if check_choice(mode, "mode", _MODES) == "auto" else mode
        self.cache_graph = (self.data.single if cache_graph is None
                            else check_bool(cache_graph, "cache_graph"))
        self.max_probes = (None if max_probes is None else
                           check_int(max_probes, "max_probes", low=1, hint=" (None: no cap)"))
        self.batching = check_choice(batching, "batching", ("auto", "vmap", "loop"))
        # a fixed rule, never a timing: results must not depend on the machine's load
        self._batched = (batching == "vmap" if batching != "auto"
                         else self.view.device.type != "cpu")
        self.progress = None  # callable(num_vectors) after each batch, set by helpers
        self._cache: dict[int, _Ctx] = {}
        self._reverse_over_reverse = False
        self._warned_dtype = None
        if _no_autocast(self.view.device) is not None:
            warnings.warn("autocast is enabled: curvature products run with autocast "
                          f"disabled, in the parameters' dtype ({self.view.dtype})",
                          UserWarning, stacklevel=3)
        n = self._dimension()
        super().__init__((n, n), self.view.dtype, device=self.view.device,
                         symmetric=self._symmetric, psd=self._psd, backend="torch")
        self.reduction = self._find_reduction()
        if check_bool(check_deterministic, "check_deterministic"):
            self.check_deterministic()

    # ------------------------------------------------------------------ public facts
    @property
    def model(self) -> Any:
        """The module (a private copy when ``dtype`` differs) or function products use."""
        return self.view.fn if self.view.fn is not None else self.view.module

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
    def num_examples(self) -> float:
        """Examples a mean-reduced loss averages over in one pass (the sum of batch weights).

        The batch size unless the loss counts otherwise (targets equal to
        ``ignore_index``, :class:`~hessian.LanguageModelLoss` tokens) or
        ``num_examples=`` says.
        """
        return self.data.num_examples

    @property
    def batched(self) -> bool:
        """Whether blocks of probes go through one ``vmap``-batched backward.

        ``False``: a loop over probes on the same graph (``batching="auto"`` on a CPU,
        or after an operation without a batching rule); ``True``: batched (``"auto"`` on
        other devices).
        """
        return self._batched

    def free(self) -> None:
        """Drop cached graphs (they are rebuilt on the next product)."""
        self._cache.clear()

    def _loss_value(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return self.spec.value(self.view.call(batch.inputs, batch.kind), batch)

    def loss(self) -> float:
        r"""The loss :math:`\mathcal L(\theta)` on the data, batches combined as in the products.

        Batch losses are weighted by their examples (:attr:`num_examples`) for
        ``reduction="mean"`` and added for ``"sum"``; evaluated without a graph at the
        current parameters.

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
        acc, total = 0.0, 0.0
        mean = self.reduction != "sum"
        for batch in self.data:
            w = batch.count if mean else 1.0
            if w:
                acc += float(self._loss_value(batch)) * w
            total += w
        return acc / total if mean else acc

    def _dimension(self) -> int:
        return self.view.num_params

    def _find_reduction(self) -> str | None:
        """The loss's reduction: declared, or probed; an error where the weights need it."""
        red = self.spec.reduction
        if red is not None:
            return red
        with self._guard():
            red = probe_reduction(lambda b: float(self._loss_value(b)), self.data,
                                  self.view.dtype)
        if red is None and self.data.num_batches > 1:
            sizes = self.data.sizes
            raise ValueError(
                "the reduction of loss_fn is unknown: on a batch its value is neither the "
                "mean nor the sum of its values on the batch's parts (or no batch has two "
                f"samples), and the {len(sizes)} batches (sizes {sizes[:6]}) are weighted by "
                "it. Pass reduction='sum', or reduction='mean' with num_examples="
                "callable(target) -> the number of examples the loss averages over (e.g. "
                "counted tokens); for a language model, loss_fn=hessian.LanguageModelLoss() "
                "with output='logits' counts its tokens itself"
            )
        return red

    # ------------------------------------------------------------------ products
    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Autocast off, known errors explained."""
        with ExitStack() as stack:
            off = _no_autocast(self.view.device)
            if off is not None:
                stack.enter_context(off)
            stack.enter_context(_explained())
            yield

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        V = self._prepare(V)
        p = V.shape[1]
        out = V.new_empty(p, self.shape[0])
        step = self.max_probes or max(p, 1)
        with self._guard():
            for i in range(0, p, step):
                self._pass(V[:, i:i + step], out[i:i + step])
        return out.T

    def _prepare(self, V: torch.Tensor) -> torch.Tensor:
        if not isinstance(V, torch.Tensor):
            raise TypeError(f"curvature operators take torch tensors, got {type(V).__name__}")
        if V.device != self.view.device:
            raise ValueError(f"the probe is on {V.device}, the operator on {self.view.device}")
        if V.dtype != self.view.dtype:
            V = V.to(self.view.dtype)
        return V.detach()

    def _context(self, batch: Batch, fresh: bool) -> _Ctx:
        if self.cache_graph and not fresh and batch.index in self._cache:
            return self._cache[batch.index]
        self._cache.pop(batch.index, None)
        ctx = self._build(batch)
        if self.cache_graph:
            self._cache[batch.index] = ctx
        return ctx

    def _check_precision(self, t: torch.Tensor, batch: Batch) -> None:
        """Refuse half-precision outputs (autocast); warn once for a lower precision."""
        if not t.is_floating_point() or t.dtype == self.view.dtype:
            return
        if torch.finfo(t.dtype).bits < 32:
            raise ValueError(
                f"the model returned {t.dtype} at batch {batch.index} while its parameters "
                f"are {self.view.dtype}: autocast or half-precision layers inside its "
                "forward? Curvature is computed in the parameters' dtype; remove the "
                "autocast from the forward (or pass dtype=...)"
            )
        if t.dtype != self._warned_dtype:
            self._warned_dtype = t.dtype
            warnings.warn(
                f"the model returns its {'loss' if t.ndim == 0 else 'outputs'} in {t.dtype} "
                f"while the parameters are {self.view.dtype}: the curvature has {t.dtype} "
                "accuracy (transformers models compute output.loss in float32; "
                "loss_fn=hessian.LanguageModelLoss() with output='logits' keeps the "
                "parameters' dtype)", UserWarning, stacklevel=6)

    def _pass(self, V: torch.Tensor, out: torch.Tensor, fresh: bool = False) -> None:
        """One pass over the data: add the weighted batch products of ``V`` into ``out``.

        ``V`` is ``(P, p)``, ``out`` ``(p, P)``, uninitialised. Weights are relative to the
        first batch with examples (one batch: no scaling at all); batches without
        examples (every target ignored) contribute nothing.
        """
        sums, losses = [], []
        mean = self.reduction != "sum"
        total, w0 = 0.0, None
        for batch in self.data:
            w = batch.count if mean else 1.0
            total += w
            if w == 0:
                continue
            first = w0 is None
            w0 = w if first else w0
            ctx = self._context(batch, fresh)
            self._apply(ctx, V, batch, out, w / w0, first)
            sums.append(out.sum())  # cumulative: the first non-finite one names the batch
            losses.append(ctx.loss)
            del ctx
            if self.progress is not None:
                self.progress(V.shape[1])
        if w0 is None:
            raise ValueError("no batch has an example to count (every target ignored?)")
        self._raise_nonfinite(sums, losses, out)
        if mean and total != w0:
            out.mul_(w0 / total)

    def _apply(self, ctx: _Ctx, V: torch.Tensor, batch: Batch, out: torch.Tensor,
               alpha: float, first: bool) -> None:
        """Add ``alpha`` times the batch product of ``V`` ``(P, p)`` into ``out`` ``(p, P)``.

        ``first``: the first contribution; ``out`` is uninitialised and ``alpha`` is 1.
        """
        p = V.shape[1]
        if p == 1 or not self._batched:
            for j in range(p):
                parts = self._product(ctx, self._blocks(V[:, j:j + 1]), 1, batch)
                self._add(out[j:j + 1], parts, alpha, first)
        else:
            self._add(out, self._product(ctx, self._blocks(V), p, batch), alpha, first)

    def _blocks(self, V: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter ``(p, *shape)`` blocks of the rows of ``V`` ``(P, p)``."""
        view, o, p = self.view, 0, V.shape[1]
        parts = []
        for n, s in zip(view.numels, view.shapes, strict=True):
            parts.append(V[o:o + n].T.reshape(p, *s))
            o += n
        return parts

    def _add(self, out: torch.Tensor, parts: list, alpha: float, first: bool = False) -> None:
        """``out += alpha * parts`` (``first``: ``out = parts``, ``out`` uninitialised).

        Each part lands in its slice of ``out`` viewed in the parameter's shape, so no
        part is copied on the way, whatever its strides.
        """
        o, p = 0, out.shape[0]
        for part, n, shape in zip(parts, self.view.numels, self.view.shapes, strict=True):
            dest = out[:, o:o + n].view(p, *shape)
            if part is None:
                if first:
                    dest.zero_()
            elif first:
                dest.copy_(part)
            else:
                dest.add_(part, alpha=alpha)
            o += n

    @staticmethod
    def _raise_nonfinite(sums: list, losses: list, result: torch.Tensor) -> None:
        """Raise, naming the batch, when a batch product held NaN or Inf.

        ``sums`` are sums of the batch products (or running sums over the batches): a
        finite sum proves every entry finite (NaN or Inf in a sum's terms leaves it NaN
        or Inf), at the cost of one reduction instead of an elementwise test; a
        non-finite sum of finite entries (overflow) leaves ``result`` finite and is not
        an error.
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

    # ------------------------------------------------------------------ autograd helpers
    def _grad(self, outputs: list, inputs: list, grad_outputs: list, p: int) -> list:
        """Batched vector-Jacobian products; ``grad_outputs`` have a leading probe axis."""
        if p == 1:
            res = torch.autograd.grad(outputs, inputs, [g[0] for g in grad_outputs],
                                      retain_graph=True, allow_unused=True)
            return [None if r is None else r[None] for r in res]
        if self._batched:
            try:
                return list(torch.autograd.grad(outputs, inputs, grad_outputs,
                                                retain_graph=True, allow_unused=True,
                                                is_grads_batched=True))
            except RuntimeError as err:  # an op without a batching rule
                warnings.warn(f"batched backward failed ({str(err)[:120]}); falling back to a "
                              "loop over probes", UserWarning, stacklevel=4)
                self._batched = False
        cols = [torch.autograd.grad(outputs, inputs, [g[j] for g in grad_outputs],
                                    retain_graph=True, allow_unused=True) for j in range(p)]
        return [None if cols[0][i] is None else torch.stack([c[i] for c in cols])
                for i in range(len(inputs))]

    def _vmap(self, fn, T: Any, p: int):
        def col(j: int) -> Any:
            return {k: v[j] for k, v in T.items()} if isinstance(T, dict) else T[j]

        if p == 1:
            return _unsqueeze(fn(col(0)))
        if self._batched:
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
        z = torch.randint(0, 2, (self.shape[0], 1), generator=g).to(self.view.dtype) * 2 - 1
        z = z.to(self.view.device)
        y1, y2 = z.new_empty(1, self.shape[0]), z.new_empty(1, self.shape[0])
        with self._guard():
            self._pass(z, y1, fresh=True)
            self._pass(z, y2, fresh=True)
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
