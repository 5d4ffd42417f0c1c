r"""Curvature operators of PyTorch models, as :class:`spectra.Operator` objects.

For a model :math:`f(x; \theta)` with ``P`` parameters, data batches :math:`b` with
:math:`n_b` examples (:math:`n = \sum_b n_b`) and a loss with ``reduction="mean"`` (the
usual case),

.. math::
    \mathcal{L}(\theta) = \sum_b \frac{n_b}{n} L_b(\theta), \qquad
    H = \nabla^2_\theta \mathcal{L}, \qquad
    G = \sum_b \frac{n_b}{n} J_b^T \Lambda_b J_b,

with :math:`J_b = \partial f(X_b) / \partial \theta` and :math:`\Lambda_b` the Hessian
of :math:`L_b` with respect to the outputs (closed form for cross-entropy and squared
error, see :mod:`hessian.curvature._losses`). The examples :math:`n_b` of a batch are
its samples, its counted targets where the loss ignores some (``ignore_index``), its
counted tokens for :class:`~hessian.LanguageModelLoss`, or what ``num_examples=`` says;
a short last batch therefore counts exactly as its examples do. With ``reduction="sum"``
the batch losses are added instead.

Batches and losses
------------------
A batch is read by its type (never by guessing from its contents): a pair
``(inputs, targets)`` calls ``model(inputs)`` (``model(*inputs)`` for a tuple,
``model(**inputs)`` for a mapping) and ``loss_fn(output, targets)``; a mapping (``dict``,
transformers' ``BatchEncoding``) or a dataclass calls ``model(**batch)`` and
``loss_fn(output, batch)``; a bare tensor calls ``model(batch)`` and
``loss_fn(output, batch)``; with ``batch_format="args"`` a tuple is positional inputs,
``model(*batch)`` and ``loss_fn(output, batch)``. ``loss_fn="loss"`` takes the loss from
the model's output (``output.loss``, what transformers models return when the batch
holds labels). ``output=`` picks the tensor of outputs from what the model returns
(``"logits"``); the loss then sees that tensor. The reduction of a loss that does not
declare one (a plain function) is found by comparing the loss on a batch with the loss
on its two parts; when that fails and several batches must be weighted, construction
stops with the fix in the message.

Every operator is a symmetric :class:`spectra.Operator` on flat torch vectors of
length ``P`` (sample-space length for :class:`NTKOperator`) on the model's device in
its dtype (or in ``dtype=`` when a float32 model is evaluated in float64), so every
:mod:`spectra` estimator runs on it unchanged. Products of many probes at once
(:meth:`~spectra.Operator.matmat`) either loop over the probes on one reused graph or
go through one batched backward pass (``torch.autograd.grad(..., is_grads_batched=True)``,
i.e. ``vmap`` over the backward graph); for one fixed batch the first-order graph is
built once and reused.

Product modes
-------------
``"autograd"``: reverse-over-reverse (double backward) on the live module, reusing the
first-order graph. ``"func"``: ``torch.func`` forward-over-reverse (``jvp`` of ``grad``)
under ``vmap``; keeps no graph between products. ``"auto"`` picks ``"autograd"`` on
every device, by measurement (``benchmarks/bench_hessian.py``, 85,002-parameter MLP):
on the CPU autograd was 1.2-1.6x a gradient per probe against 1.9-5.8x for func; on an
H100 autograd took 2.0x a gradient for one probe against 5.7x, batched products of 100
probes were equally fast (0.1 ms per probe) and autograd's peak memory was lower
(944 MB against 1522 MB), so func saved no GPU memory there. ``batching="auto"`` loops
on a CPU (in the same benchmark the loop took 1.9-2.0x a gradient per probe, ``vmap``
3.1-5.9x) and batches elsewhere: a fixed rule, so that results never depend on timing.

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
from ._data import Batch
from ._losses import LossSpec
from ._params import group_by_owner, select_names
from .model import FunctionalModel, select_output

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
    model : torch.nn.Module or callable
        A module (in eval mode when it has dropout or BatchNorm layers, see
        ``allow_train_mode``), or a function ``model(params, inputs)`` of a dict of
        parameter tensors (pass that dict as ``params=``) and a batch's model inputs.
    loss_fn : callable or str
        ``loss_fn(output, target) -> scalar tensor`` with ``target`` the batch's targets
        (pairs) or the batch itself (mappings, dataclasses, tensors, positional tuples);
        or the name of the model output's loss field (``"loss"``: ``output.loss``). Its
        ``reduction`` attribute (``"mean"`` or ``"sum"``) decides how batches combine; a
        function without one is probed (module docstring) unless ``reduction=`` is given.
    data : batch or iterable of batches
        One batch, or an iterable of batches (list, ``DataLoader``) that yields the same
        data on every pass: ``(inputs, targets)`` pairs, mappings or dataclasses of
        keyword inputs, tensors, or (``batch_format="args"``) tuples of positional
        inputs. Batches are weighted by their examples.
    params : None, str, tensor, module, or a list of these
        The parameters (default: all with ``requires_grad``): exact names, prefixes
        (``"transformer.h.1"``: everything under it), glob patterns (``"*.attn.*"``),
        tensors or submodules. The flat vector stacks them in this order;
        :attr:`param_names` lists them. A tensor tied to several modules is one
        parameter (counted once); listing one parameter twice is an error.
    output : None, str or callable
        What of the model's return the loss sees: ``None`` (all of it), a field name
        (``"logits"``) or ``callable(return) -> tensor``.
    dtype : torch.dtype, optional
        Evaluation precision; ``torch.float64`` on a float32 model evaluates a private
        float64 copy (reference work).
    mode : {"auto", "autograd", "func"}
        Product mode (module docstring); ``"auto"``: autograd (measured best on CPU and
        CUDA).
    reduction : {"mean", "sum"}, optional
        For a loss without a ``reduction`` attribute: the batch loss is a mean over its
        examples or a sum. ``None``: found by the probe.
    num_examples : callable, optional
        ``num_examples(target) -> int`` (``target`` as ``loss_fn`` gets it): the
        examples a batch's mean averages over, where the batch size is not it.
    batch_format : {"auto", "args"}
        ``"args"``: a tuple batch is the model's positional inputs (no targets).
    allow_train_mode : bool
        Take the curvature of a model whose BatchNorm layers are in train mode (batch
        statistics, batch by batch); the operator's forwards leave their running
        statistics untouched. Dropout in train mode is refused either way.
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
        probes on the same (reused) graph. ``"auto"``: the loop on a CPU, ``vmap`` on
        other devices (module docstring); the results never depend on timings.
    move_data : bool
        Move batches to the model's device instead of refusing them.

    Raises
    ------
    ValueError
        Train-mode dropout/BatchNorm, parameters without ``requires_grad`` or listed
        twice, empty data, data on another device, a non-scalar loss, class targets out
        of range, a loss whose reduction is unknown over several batches.
    TypeError
        A ``torch.compile``\ d model, ``params`` of the wrong kind, a model returning
        something other than a tensor where a tensor is needed.
    RuntimeError
        Two products with the same probe disagree; attention kernels without a second
        derivative (the message names ``attn_implementation="eager"``).
    spectra.results.NonFiniteError
        NaN or Inf in a loss or product (the batch index is named); a
        ``FloatingPointError`` and a ``ValueError``.

    Notes
    -----
    Under ``torch.autocast`` the products run with autocast disabled: curvature is
    computed in the parameters' dtype (a warning says so).

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

    def _build(self, batch: Batch) -> _Ctx:
        ctx = _Ctx()
        view, spec = self.view, self.spec
        if self.mode == "autograd":
            with torch.enable_grad():
                L = spec.value(view.call(batch.inputs, batch.kind), batch)
                self._check_precision(L, batch)
                grads = torch.autograd.grad(L, view.params, create_graph=True,
                                            allow_unused=True)
            ctx.loss, ctx.grads = L.detach(), grads
            return ctx

        def f(pd: dict) -> torch.Tensor:
            return spec.value(view.call_functional(pd, batch.inputs, batch.kind), batch)

        primals = {n: p.detach() for n, p in zip(view.names, view.params, strict=True)}
        gradf = torch.func.grad(f)
        if self._reverse_over_reverse:
            _, vjp_fn = torch.func.vjp(gradf, primals)
            ctx.hvp = lambda t: vjp_fn(t)[0]
        else:
            ctx.hvp = lambda t: torch.func.jvp(gradf, (primals,), (t,))[1]
        ctx.loss = None
        return ctx

    def _product(self, ctx: _Ctx, Vs: list, p: int, batch: Batch) -> list:
        view = self.view
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
                              stacklevel=5)
                self._reverse_over_reverse = True
                res = self._vmap(self._context(batch, fresh=True).hvp, T, p)
            return [res[n] for n in view.names]
        idx = [i for i, g in enumerate(ctx.grads) if g is not None and g.requires_grad]
        if not idx:  # the loss is at most linear in every chosen parameter
            return [None] * len(view.names)
        return self._grad([ctx.grads[i] for i in idx], view.params, [Vs[i] for i in idx], p)


# ====================================================================== J^T Lambda J family
class _OutputSpaceOperator(CurvatureOperator):
    """Operators ``sum_b w_b J_b^T Lambda_b J_b`` built from Jacobian products."""

    def _outputs(self, raw: Any, batch: Batch) -> torch.Tensor:
        if self._needs_targets:
            return self.spec.outputs(raw, batch)
        return select_output(raw, self.spec.output, batch.index)

    def _build(self, batch: Batch) -> _Ctx:
        ctx = _Ctx()
        view = self.view
        if self.mode == "autograd":
            with torch.enable_grad():
                out = self._outputs(view.call(batch.inputs, batch.kind), batch)
                self._check_precision(out, batch)
                if not out.requires_grad:
                    raise ValueError(f"the model output at batch {batch.index} does not depend "
                                     "on the chosen parameters")
                u = torch.zeros_like(out, requires_grad=True)
                jtu = torch.autograd.grad(out, view.params, u, create_graph=True,
                                          allow_unused=True)
            ctx.out, ctx.u, ctx.jtu = out, u, jtu
        else:
            inputs, kind = batch.inputs, batch.kind
            primals = {n: p.detach() for n, p in zip(view.names, view.params, strict=True)}

            def fout(pd: dict) -> torch.Tensor:
                return self._outputs(view.call_functional(pd, inputs, kind), batch)

            out, vjp_fn = torch.func.vjp(fout, primals)
            self._check_precision(out, batch)
            ctx.out, ctx.vjp_fn = out, vjp_fn
            ctx.jvp = lambda t: torch.func.jvp(fout, (primals,), (t,))[1]
        ctx.loss = None
        if self._needs_targets:
            with torch.no_grad():
                ctx.loss = self.spec.value(ctx.out.detach(), batch, selected=True)
        ctx.block = self._block(ctx.out.detach(), batch)
        return ctx

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

    def _product(self, ctx: _Ctx, Vs: list, p: int, batch: Batch) -> list:
        return self._vjp(ctx, ctx.block(self._jvp(ctx, Vs, p)), p)


class GGNOperator(_OutputSpaceOperator):
    r"""Generalised Gauss-Newton :math:`\sum_b \frac{n_b}{n} J_b^T \Lambda_b J_b` (PSD).

    :math:`\Lambda_b` is the Hessian of the batch loss with respect to the model
    outputs: closed form for ``nn.CrossEntropyLoss`` (``diag(p) - p p^T`` per sample;
    no double backward through ``log_softmax``), :class:`~hessian.LanguageModelLoss`
    (the same per counted token; ignored positions contribute nothing) and
    ``nn.MSELoss``; by autograd on the outputs only for any other loss (then PSD only
    if the loss is convex in the outputs). Parameters as for :class:`HessianOperator`;
    ``output=`` picks the outputs :math:`f` (``"logits"`` for transformers models) and
    ``loss_fn`` must be a function of them.

    References
    ----------
    .. [1] N. N. Schraudolph, Neural Computation 14 (2002).
    """

    def _block(self, out: torch.Tensor, batch: Batch):
        return self.spec.ggn(out, batch)


class FisherOperator(_OutputSpaceOperator):
    r"""Fisher information: empirical (true targets) or Monte-Carlo (sampled targets).

    ``kind="empirical"``: :math:`\frac1n \sum_i \nabla\ell_i \nabla\ell_i^T` at the data
    targets (per counted token for :class:`~hessian.LanguageModelLoss`).
    ``kind="mc"``: the same with ``mc_samples`` targets per input drawn from the model's
    predictive distribution (categorical for cross-entropy, Gaussian with the matching
    variance for squared error), so that its expectation is the GGN. The draws use
    ``generator`` and are made once per batch, then kept: the operator is a fixed
    matrix. (With ``reduction="sum"`` the :math:`1/n` is dropped.)

    Parameters
    ----------
    model, loss_fn, data
        As for :class:`HessianOperator`; ``loss_fn`` must be ``nn.CrossEntropyLoss``
        (no class weights or label smoothing), ``nn.MSELoss`` or
        :class:`~hessian.LanguageModelLoss`.
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

    def __init__(self, model: Any, loss_fn: Any, data: Any, *, kind: str = "empirical",
                 generator: torch.Generator | None = None, mc_samples: int = 1,
                 **kwargs: Any) -> None:
        check_choice(kind, "kind", ("empirical", "mc"))
        if kind == "mc" and not isinstance(generator, torch.Generator):
            raise ValueError("kind='mc' needs an explicit torch.Generator (generator=...)")
        if LossSpec(loss_fn).kind not in ("ce", "mse", "lm"):
            raise ValueError(
                "the Fisher needs a loss with a known likelihood: nn.CrossEntropyLoss (no "
                "class weights, no label smoothing), nn.MSELoss or hessian.LanguageModelLoss, "
                f"got {loss_fn!r}"
            )
        self.mc_samples = check_int(mc_samples, "mc_samples", low=1)
        self.kind = kind
        self.generator = generator
        self._mc_targets: dict[int, torch.Tensor] = {}
        super().__init__(model, loss_fn, data, **kwargs)

    def _block(self, out: torch.Tensor, batch: Batch):
        targets = None
        if self.kind == "mc":
            targets = self._mc_targets.get(batch.index)
            if targets is None:
                targets = self.spec.draw(out, batch, self.mc_samples, self.generator)
                self._mc_targets[batch.index] = targets
        return self.spec.fisher(out, batch, targets)


class JacobianGramOperator(_OutputSpaceOperator):
    r"""Parameter-space Jacobian Gram :math:`J^T J = \sum_b J_b^T J_b` (PSD, unnormalised).

    :math:`J` stacks the Jacobians of all outputs of all samples; its nonzero
    eigenvalues are those of the neural tangent kernel :math:`J J^T`
    (:class:`NTKOperator`). Targets are not needed: ``data`` may yield inputs only.

    Parameters
    ----------
    model : torch.nn.Module or callable
    data : tensor, tuple, mapping or iterable
        Inputs, ``(inputs, targets)`` pairs (targets ignored), mappings of keyword
        inputs, or an iterable of them.
    **kwargs
        The keyword options of :class:`HessianOperator` (not ``reduction``);
        ``output=`` picks the outputs.
    """

    _needs_targets = False

    def __init__(self, model: Any, data: Any, **kwargs: Any) -> None:
        super().__init__(model, None, data, **kwargs)

    def _block(self, out: torch.Tensor, batch: Batch):
        return lambda W: W


class NTKOperator(_OutputSpaceOperator):
    r"""Empirical neural tangent kernel :math:`K = J J^T` in sample space (PSD).

    Rows and columns are indexed by (sample, output) pairs, sample-major
    (``i * C + c``) over all batches in order: shape ``(N C, N C)``. With ``output=k``
    only output ``k`` is kept: :math:`K_k = J_k J_k^T`, shape ``(N, N)``.

    Parameters
    ----------
    model : torch.nn.Module or callable
    data : tensor, tuple, mapping or iterable
        Inputs, ``(inputs, targets)`` pairs (targets ignored), mappings of keyword
        inputs, or an iterable of them.
    output : int, str or callable, optional
        An int keeps one output component (per-output kernel); a field name or a
        callable picks the outputs from what the model returns (as for
        :class:`HessianOperator`); ``None`` flattens all outputs.
    component : int, optional
        One output component, with a field name or callable ``output``.
    **kwargs
        The keyword options of :class:`HessianOperator` (not ``reduction``).
    """

    _needs_targets = False

    def __init__(self, model: Any, data: Any, *, output: Any = None,
                 component: int | None = None, **kwargs: Any) -> None:
        if isinstance(output, int) and not isinstance(output, bool):
            output, component = None, output
        self.output = component
        self._rows: list[int] = []
        super().__init__(model, None, data, output=output, **kwargs)

    def _dimension(self) -> int:
        rows = []
        for batch in self.data:
            with torch.no_grad():
                out = self._outputs(self.view.call(batch.inputs, batch.kind), batch)
            C = out[0].numel() if out.ndim > 1 else 1
            if self.output is not None:
                check_int(self.output, "output", low=0, high=C - 1,
                          hint=f" (the model has {C} outputs)")
            n = out.shape[0] if out.ndim else 1  # the outputs' samples, not a guess
            rows.append(n * (C if self.output is None else 1))
        self._rows = rows
        return int(sum(rows))

    def _block(self, out: torch.Tensor, batch: Batch):
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

    def _pass(self, V: torch.Tensor, out: torch.Tensor, fresh: bool = False) -> None:
        p = V.shape[1]
        offsets = [0]
        for r in self._rows:
            offsets.append(offsets[-1] + r)
        # pass 1: t = sum_b J_b^T v_b (parameter space)
        t = V.new_zeros(p, self.view.num_params)
        for batch in self.data:
            ctx = self._context(batch, fresh)
            rows = V[offsets[batch.index]:offsets[batch.index + 1]].T
            self._add(t, self._vjp(ctx, self._embed(rows, ctx.out), p), 1.0)
            del ctx
        # pass 2: (J_b t) for every batch, in place
        sums = []
        Ts = self.view.split(t)
        for batch in self.data:
            ctx = self._context(batch, fresh=False)
            y = self._select(self._jvp(ctx, Ts, p))
            out[:, offsets[batch.index]:offsets[batch.index + 1]] = y
            sums.append(y.sum())
            del ctx
            if self.progress is not None:
                self.progress(p)
        self._raise_nonfinite(sums, [None] * len(sums), out)


# ====================================================================== per layer
_KINDS = {"hessian": HessianOperator, "ggn": GGNOperator, "fisher": FisherOperator}


def _groups(model: nn.Module, params: Any) -> dict[str, Any]:
    """Parameter groups of the per-layer blocks: module name -> names of its block."""
    groups = group_by_owner(model, select_names(model, params))
    if not groups:
        raise ValueError("no module of the model owns a parameter that requires grad")
    return groups


def per_layer(model: Any, loss_fn: Any, data: Any, *, kind: str = "hessian",
              params: Any = None, **kwargs: Any) -> dict[str, CurvatureOperator]:
    """One curvature operator per module that owns trainable parameters.

    The block of module ``m`` is the diagonal block of the full operator for the
    parameters that ``m`` holds directly. A tensor tied to several modules belongs to
    the first of them in module order only (one block, counted once). For a functional
    model the blocks group the parameter dict's names by their prefix before the last
    dot.

    Parameters
    ----------
    model : torch.nn.Module or callable
    loss_fn : callable or str
    data : batch or iterable of batches
    kind : {"hessian", "ggn", "fisher"}
    params : optional
        Restrict the blocks to these parameters (as for :class:`HessianOperator`).
    **kwargs
        Passed to each operator (``dtype``, ``mode``, ``generator``...).

    Returns
    -------
    dict
        Module name -> operator, in module order.
    """
    check_choice(kind, "kind", tuple(_KINDS))
    if not isinstance(model, nn.Module):  # one module for every block
        model, params = FunctionalModel(model, params), None
    out: dict[str, CurvatureOperator] = {}
    for name, group in _groups(model, params).items():
        op = _KINDS[kind](model, loss_fn, data, params=group, **kwargs)
        if op.reduction is not None:  # found once (a probe), then given to every block
            kwargs.setdefault("reduction", op.reduction)
        out[name] = op
    return out
