r"""Curvature operators of PyTorch models, as :class:`spectra.Operator` objects.

For a model :math:`f(x; \theta)` with ``P`` parameters, data batches
:math:`(X_b, Y_b)` of sizes :math:`N_b` (:math:`N = \sum_b N_b`) and a loss with
``reduction="mean"`` (the usual case),

.. math::
    \mathcal{L}(\theta) = \sum_b \frac{N_b}{N} L_b(\theta), \qquad
    H = \nabla^2_\theta \mathcal{L}, \qquad
    G = \sum_b \frac{N_b}{N} J_b^T \Lambda_b J_b,

with :math:`J_b = \partial f(X_b) / \partial \theta` and :math:`\Lambda_b` the Hessian
of :math:`L_b` with respect to the outputs (closed form for cross-entropy and squared
error, see :mod:`hessian.curvature._losses`). A short last batch therefore counts exactly as its
samples do. With ``reduction="sum"`` the batch losses are added instead.

Every operator is a symmetric :class:`spectra.Operator` on flat torch vectors of
length ``P`` (sample-space length for :class:`NTKOperator`) on the model's device in
its dtype (or in ``dtype=`` when a float32 model is evaluated in float64), so every
:mod:`spectra` estimator runs on it unchanged. Products of many probes at once
(:meth:`~spectra.Operator.matmat`) go through one batched backward pass
(``torch.autograd.grad(..., is_grads_batched=True)``, i.e. ``vmap`` over the backward
graph); for one fixed batch the first-order graph is built once and reused.

Product modes
-------------
``"autograd"``: reverse-over-reverse (double backward) on the live module, reusing the
first-order graph. ``"func"``: ``torch.func`` forward-over-reverse (``jvp`` of ``grad``)
under ``vmap``; keeps no graph between products. ``"auto"`` picks ``"autograd"`` on
every device, by measurement (``benchmarks/bench_hessian.py``, 85,002-parameter MLP):
on the CPU autograd was 1.2-1.6x a gradient per probe against 1.9-5.8x for func; on an
H100 autograd took 2.0x a gradient for one probe against 5.7x, batched products of 100
probes were equally fast (0.1 ms per probe) and autograd's peak memory was lower
(944 MB against 1522 MB), so func saved no GPU memory there.

References
----------
.. [1] B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural
   Computation 6 (1994).
.. [2] N. N. Schraudolph, "Fast curvature matrix-vector products for second-order
   gradient descent", Neural Computation 14 (2002).
.. [3] J. Martens, "New insights and perspectives on the natural gradient method",
   JMLR 21 (2020).
.. [4] A. Jacot, F. Gabriel, C. Hongler, "Neural tangent kernel", NeurIPS 2018.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from spectra.validation import check_choice, check_int

from ._base import CurvatureOperator, _Ctx
from ._losses import draw_mc_targets, fisher_block, ggn_block, loss_kind

__all__ = [
    "CurvatureOperator",
    "FisherOperator",
    "GGNOperator",
    "HessianOperator",
    "JacobianGramOperator",
    "NTKOperator",
    "per_layer",
]

# ====================================================================== Hessian
class HessianOperator(CurvatureOperator):
    r"""The Hessian :math:`\nabla^2_\theta \mathcal{L}` of a model's loss over its data.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode when it has dropout or BatchNorm layers.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar tensor``, e.g. ``nn.CrossEntropyLoss()``.
        Its ``reduction`` attribute (``"mean"`` or ``"sum"``) decides how batches combine;
        a plain function is taken as ``"mean"`` unless ``reduction=`` says otherwise.
    data : tuple or iterable
        One ``(inputs, targets)`` batch, or an iterable of batches (list, ``DataLoader``)
        that yields the same data on every pass. ``inputs`` may be a tensor, a tuple of
        positional tensors or a dict of keyword tensors. Batches are weighted by size.
    params : None, list of tensors or names
        The parameters (default: all with ``requires_grad``). The flat vector stacks
        them in this order; :attr:`param_names` lists them.
    dtype : torch.dtype, optional
        Evaluation precision; ``torch.float64`` on a float32 model evaluates a private
        float64 copy (reference work).
    mode : {"auto", "autograd", "func"}
        Product mode (module docstring); ``"auto"``: autograd (measured best on CPU and
        CUDA).
    reduction : {"mean", "sum"}, optional
        Only for a loss function without a ``reduction`` attribute.
    check_deterministic : bool
        Apply the operator twice to one probe at construction and refuse it when the
        products differ (two extra products, not counted in :attr:`num_matvecs`).
    cache_graph : bool, optional
        Keep the first-order graph of each batch between products (default: only for a
        single batch; for a data loader graphs are freed after each batch).
    max_probes : int, optional
        Largest number of probes pushed through one call (memory cap).
    batching : {"auto", "vmap", "loop"}
        How a block of probes is applied: one ``vmap``-batched backward, or a loop over
        probes on the same (reused) graph. ``"auto"`` measures both on the first block of
        four or more probes (half each, no extra products) and keeps the faster; the
        per-probe seconds are left in :attr:`batching_times`. On a CPU the loop often
        wins (the batched intermediates fall out of cache); on a GPU, ``vmap``.
    move_data : bool
        Move batches to the model's device instead of refusing them.

    Raises
    ------
    ValueError
        Train-mode dropout/BatchNorm, parameters without ``requires_grad``, empty data,
        data on another device, a non-scalar loss.
    RuntimeError
        Two products with the same probe disagree.
    spectra.results.NonFiniteError
        NaN or Inf in a loss or product (the batch index is named); a
        ``FloatingPointError`` and a ``ValueError``.

    Examples
    --------
    >>> import torch, spectra, hessian
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Linear(3, 2)
    >>> X, y = torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)
    >>> H = hessian.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y))
    >>> H.shape
    (8, 8)
    """

    _psd = False

    def _build(self, batch) -> _Ctx:
        ctx = _Ctx()
        view = self.view
        if self.mode == "autograd":
            with torch.enable_grad():
                L = self._loss(view.call(batch.inputs), batch)
                grads = torch.autograd.grad(L, view.params, create_graph=True,
                                            allow_unused=True)
            ctx.loss, ctx.grads = L.detach(), grads
            return ctx
        inputs, loss = batch.inputs, self._loss

        def f(pd: dict) -> torch.Tensor:
            return loss(view.call_functional(pd, inputs), batch)

        primals = {n: p.detach() for n, p in zip(view.names, view.params, strict=True)}
        gradf = torch.func.grad(f)
        if self._reverse_over_reverse:
            _, vjp_fn = torch.func.vjp(gradf, primals)
            ctx.hvp = lambda t: vjp_fn(t)[0]
        else:
            ctx.hvp = lambda t: torch.func.jvp(gradf, (primals,), (t,))[1]
        ctx.loss = None
        return ctx

    def _apply(self, ctx: _Ctx, Vt: torch.Tensor, batch) -> torch.Tensor:
        view, p = self.view, Vt.shape[0]
        Vs = view.split(Vt)
        if self.mode == "func":
            T = dict(zip(view.names, Vs, strict=True))
            try:
                res = self._vmap(ctx.hvp, T, p)
            except RuntimeError as err:
                if self._reverse_over_reverse:
                    raise
                # some ops lack a forward-mode derivative of their backward (mse_loss in
                # torch 2.x: "ZeroTensors are immutable"): use reverse-over-reverse
                warnings.warn(f"forward-over-reverse failed ({str(err)[:80]}...); using "
                              "reverse-over-reverse torch.func products", UserWarning,
                              stacklevel=4)
                self._reverse_over_reverse = True
                res = self._vmap(self._context(batch, fresh=True).hvp, T, p)
            return view.join([res[n] for n in view.names], p, Vt)
        idx = [i for i, g in enumerate(ctx.grads) if g is not None and g.requires_grad]
        if not idx:  # the loss is at most linear in every chosen parameter
            return Vt.new_zeros(p, view.num_params)
        res = self._grad([ctx.grads[i] for i in idx], view.params, [Vs[i] for i in idx], p)
        return view.join(res, p, Vt)


# ====================================================================== J^T Lambda J family
class _OutputSpaceOperator(CurvatureOperator):
    """Operators ``sum_b w_b J_b^T Lambda_b J_b`` built from Jacobian products."""

    def _build(self, batch) -> _Ctx:
        ctx = _Ctx()
        view = self.view
        if self.mode == "autograd":
            with torch.enable_grad():
                out = view.call(batch.inputs)
                _check_output(out, batch.index)
                u = torch.zeros_like(out, requires_grad=True)
                jtu = torch.autograd.grad(out, view.params, u, create_graph=True,
                                          allow_unused=True)
            ctx.out, ctx.u, ctx.jtu = out, u, jtu
        else:
            inputs = batch.inputs
            primals = {n: p.detach() for n, p in zip(view.names, view.params, strict=True)}

            def fout(pd: dict) -> torch.Tensor:
                return view.call_functional(pd, inputs)

            out, vjp_fn = torch.func.vjp(fout, primals)
            _check_output(out, batch.index, need_grad=False)
            ctx.out, ctx.vjp_fn = out, vjp_fn
            ctx.jvp = lambda t: torch.func.jvp(fout, (primals,), (t,))[1]
        ctx.loss = self._batch_loss(ctx.out, batch)
        ctx.block = self._block(ctx.out.detach(), batch)
        return ctx

    def _batch_loss(self, out: torch.Tensor, batch) -> torch.Tensor | None:
        if not self._needs_targets:
            return None
        with torch.no_grad():
            return self._loss(out.detach(), batch)

    def _jvp(self, ctx: _Ctx, Vs: list, p: int) -> torch.Tensor:
        """``J V`` with a leading probe axis: ``(p, *out.shape)``."""
        if self.mode == "func":
            return self._vmap(ctx.jvp, dict(zip(self.view.names, Vs, strict=True)), p)
        idx = [i for i, g in enumerate(ctx.jtu) if g is not None and g.requires_grad]
        if not idx:
            return ctx.out.new_zeros(p, *ctx.out.shape)
        (jv,) = self._grad([ctx.jtu[i] for i in idx], [ctx.u], [Vs[i] for i in idx], p)
        return ctx.out.new_zeros(p, *ctx.out.shape) if jv is None else jv

    def _vjp(self, ctx: _Ctx, W: torch.Tensor, p: int) -> list:
        """``J^T W`` per parameter, ``(p, *shape)`` each (``None`` for unused ones)."""
        if self.mode == "func":
            res = self._vmap(ctx.vjp_fn, W, p)[0]
            return [res[n] for n in self.view.names]
        return self._grad([ctx.out], self.view.params, [W], p)

    def _apply(self, ctx: _Ctx, Vt: torch.Tensor, batch) -> torch.Tensor:
        p = Vt.shape[0]
        JV = self._jvp(ctx, self.view.split(Vt), p)
        return self.view.join(self._vjp(ctx, ctx.block(JV), p), p, Vt)


def _check_output(out: Any, b: int, need_grad: bool = True) -> None:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return one tensor, got {type(out).__name__} "
                        f"at batch {b}")
    if need_grad and not out.requires_grad:
        raise ValueError(f"the model output at batch {b} does not depend on the chosen parameters")


class GGNOperator(_OutputSpaceOperator):
    r"""Generalised Gauss-Newton :math:`\sum_b \frac{N_b}{N} J_b^T \Lambda_b J_b` (PSD).

    :math:`\Lambda_b` is the Hessian of the batch loss with respect to the model
    outputs: closed form for ``nn.CrossEntropyLoss`` (``diag(p) - p p^T`` per sample;
    no double backward through ``log_softmax``) and ``nn.MSELoss``; by autograd on the
    outputs only for any other loss (then PSD only if the loss is convex in the
    outputs). Parameters as for :class:`HessianOperator`.

    References
    ----------
    .. [1] N. N. Schraudolph, Neural Computation 14 (2002).
    """

    def _block(self, out: torch.Tensor, batch):
        return ggn_block(self.loss_kind, self.reduction, out, batch.targets, self.loss_fn)


class FisherOperator(_OutputSpaceOperator):
    r"""Fisher information: empirical (true targets) or Monte-Carlo (sampled targets).

    ``kind="empirical"``: :math:`\frac1N \sum_i \nabla\ell_i \nabla\ell_i^T` at the data
    targets. ``kind="mc"``: the same with ``mc_samples`` targets per input drawn from
    the model's predictive distribution (categorical for cross-entropy, Gaussian with the
    matching variance for squared error), so that its expectation is the GGN. The draws
    use ``generator`` and are made once per batch, then kept: the operator is a fixed
    matrix. (With ``reduction="sum"`` the :math:`1/N` is dropped.)

    Parameters
    ----------
    model, loss_fn, data
        As for :class:`HessianOperator`; ``loss_fn`` must be ``nn.CrossEntropyLoss``
        (no class weights or label smoothing) or ``nn.MSELoss``.
    kind : {"empirical", "mc"}
    generator : torch.Generator
        Required for ``kind="mc"`` (on any device; draws are moved to the model's).
    mc_samples : int
        Targets drawn per input for ``kind="mc"``.
    **kwargs
        The keyword options of :class:`HessianOperator`.

    References
    ----------
    .. [1] F. Kunstner, L. Balles, P. Hennig, "Limitations of the empirical Fisher
       approximation for natural gradient descent", NeurIPS 2019.
    """

    def __init__(self, model: nn.Module, loss_fn: Any, data: Any, *, kind: str = "empirical",
                 generator: torch.Generator | None = None, mc_samples: int = 1,
                 **kwargs: Any) -> None:
        check_choice(kind, "kind", ("empirical", "mc"))
        if kind == "mc" and not isinstance(generator, torch.Generator):
            raise ValueError("kind='mc' needs an explicit torch.Generator (generator=...)")
        if loss_kind(loss_fn) == "other":
            raise ValueError(
                "the Fisher needs a loss with a known likelihood: nn.CrossEntropyLoss (no "
                f"class weights, no label smoothing) or nn.MSELoss, got {loss_fn!r}"
            )
        self.mc_samples = check_int(mc_samples, "mc_samples", low=1)
        self.kind = kind
        self.generator = generator
        self._mc_targets: dict[int, torch.Tensor] = {}
        super().__init__(model, loss_fn, data, **kwargs)

    def _block(self, out: torch.Tensor, batch):
        targets = None
        if self.kind == "mc":
            targets = self._mc_targets.get(batch.index)
            if targets is None or targets.shape[1] != out.shape[0]:
                targets = draw_mc_targets(self.loss_kind, self.reduction, out,
                                          self.mc_samples, self.generator)
                self._mc_targets[batch.index] = targets
        return fisher_block(self.loss_kind, self.reduction, out, batch.targets, targets)


class JacobianGramOperator(_OutputSpaceOperator):
    r"""Parameter-space Jacobian Gram :math:`J^T J = \sum_b J_b^T J_b` (PSD, unnormalised).

    :math:`J` stacks the Jacobians of all outputs of all samples; its nonzero
    eigenvalues are those of the neural tangent kernel :math:`J J^T`
    (:class:`NTKOperator`). Targets are not needed: ``data`` may yield inputs only.

    Parameters
    ----------
    model : torch.nn.Module
    data : tensor, tuple or iterable
        Inputs, ``(inputs, targets)`` pairs (targets ignored), or an iterable of them.
    **kwargs
        The keyword options of :class:`HessianOperator` (not ``reduction``).
    """

    _needs_targets = False

    def __init__(self, model: nn.Module, data: Any, **kwargs: Any) -> None:
        super().__init__(model, None, data, **kwargs)

    def _block(self, out: torch.Tensor, batch):
        return lambda W: W


class NTKOperator(_OutputSpaceOperator):
    r"""Empirical neural tangent kernel :math:`K = J J^T` in sample space (PSD).

    Rows and columns are indexed by (sample, output) pairs, sample-major
    (``i * C + c``) over all batches in order: shape ``(N C, N C)``. With ``output=k``
    only output ``k`` is kept: :math:`K_k = J_k J_k^T`, shape ``(N, N)``.

    Parameters
    ----------
    model : torch.nn.Module
    data : tensor, tuple or iterable
        Inputs, ``(inputs, targets)`` pairs (targets ignored), or an iterable of them.
    output : int, optional
        One output index (per-output kernel); ``None`` flattens all outputs.
    **kwargs
        The keyword options of :class:`HessianOperator` (not ``reduction``).
    """

    _needs_targets = False

    def __init__(self, model: nn.Module, data: Any, *, output: int | None = None,
                 **kwargs: Any) -> None:
        self.output = output
        self._rows: list[int] = []
        super().__init__(model, None, data, **kwargs)

    def _dimension(self) -> int:
        rows = []
        for batch in self.data:
            with torch.no_grad():
                out = self.view.call(batch.inputs)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"the model must return one tensor, got {type(out).__name__}")
            C = out[0].numel() if out.ndim > 1 else 1
            if self.output is not None:
                check_int(self.output, "output", low=0, high=C - 1,
                          hint=f" (the model has {C} outputs)")
            rows.append(batch.size * (C if self.output is None else 1))
        self._rows = rows
        return int(sum(rows))

    def _block(self, out: torch.Tensor, batch):
        return None

    def _embed(self, rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``(p, rows)`` sample-space block -> ``(p, *out.shape)`` output cotangent."""
        p, N = rows.shape[0], out.shape[0]
        if self.output is None:
            return rows.reshape(p, *out.shape)
        W = out.new_zeros(p, N, out[0].numel() if out.ndim > 1 else 1)
        W[:, :, self.output] = rows
        return W.reshape(p, *out.shape)

    def _select(self, JV: torch.Tensor) -> torch.Tensor:
        p, N = JV.shape[0], JV.shape[1]
        flat = JV.reshape(p, N, -1)
        return flat.reshape(p, -1) if self.output is None else flat[:, :, self.output]

    def _pass(self, Vt: torch.Tensor, fresh: bool = False) -> torch.Tensor:
        p = Vt.shape[0]
        offsets = [0]
        for r in self._rows:
            offsets.append(offsets[-1] + r)
        # pass 1: t = sum_b J_b^T v_b (parameter space)
        t, sums, losses = None, [], []
        for batch in self.data:
            ctx = self._context(batch, fresh)
            rows = Vt[:, offsets[batch.index]:offsets[batch.index + 1]]
            jt = self.view.join(self._vjp(ctx, self._embed(rows, ctx.out), p), p, Vt)
            t = jt if t is None else t.add_(jt)
            del ctx
        # pass 2: (J_b t) for every batch, concatenated
        parts = []
        Ts = self.view.split(t)
        for batch in self.data:
            ctx = self._context(batch, fresh=False)
            y = self._select(self._jvp(ctx, Ts, p))
            parts.append(y)
            sums.append(y.sum())
            losses.append(None)
            del ctx
            if self.progress is not None:
                self.progress(p)
        out = torch.cat(parts, dim=1)
        self._raise_nonfinite(sums, losses, out)
        return out


# ====================================================================== per layer
_KINDS = {"hessian": HessianOperator, "ggn": GGNOperator, "fisher": FisherOperator}


def per_layer(model: nn.Module, loss_fn: Any, data: Any, *, kind: str = "hessian",
              **kwargs: Any) -> dict[str, CurvatureOperator]:
    """One curvature operator per module that owns trainable parameters.

    The block of module ``m`` is the diagonal block of the full operator for the
    parameters that ``m`` holds directly (``m.parameters(recurse=False)``).

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
    data : tuple or iterable
    kind : {"hessian", "ggn", "fisher"}
    **kwargs
        Passed to each operator (``dtype``, ``mode``, ``generator``...).

    Returns
    -------
    dict
        Module name -> operator, in module order.
    """
    check_choice(kind, "kind", tuple(_KINDS))
    out = {}
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if own:
            out[name or "<root>"] = _KINDS[kind](model, loss_fn, data, params=own, **kwargs)
    if not out:
        raise ValueError("no module of the model owns a parameter that requires grad")
    return out
