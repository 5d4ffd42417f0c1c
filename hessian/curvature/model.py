"""The model side of a curvature operator: chosen parameters, train and eval mode, outputs.

:class:`ModelView` resolves ``params=`` to named leaf tensors of the model (or of a
private copy in another precision) and evaluates the model on a batch, plainly or with
the parameters replaced (``torch.func.functional_call``); the model may also be a plain
function ``f(params, inputs)`` of a parameter dict. :func:`check_eval_mode` refuses a
model whose train-mode layers would make its curvature change from one pass to the
next, and :func:`eval_mode` switches a model to eval mode for a block and restores every
module's flag afterwards (what the training-time tools do around each measurement).
:func:`select_output` picks the tensor of outputs out of what the model returns.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from ._data import call_args
from ._params import select_names

__all__ = ["FunctionalModel", "ModelView", "check_eval_mode", "eval_mode", "select_output"]


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


def _train_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if m.training and isinstance(m, _NORMS)]


def check_eval_mode(model: Any, allow_train_mode: bool = False) -> None:
    """Refuse a model whose train-mode layers make its curvature ill-defined.

    Dropout (``p > 0``) in train mode draws new masks on every pass: always refused.
    BatchNorm in train mode normalises by the batch's statistics and updates its running
    buffers on every forward: refused unless ``allow_train_mode=True``, which takes the
    curvature of the train-mode function (batch statistics, per batch) and leaves the
    running statistics untouched (see :class:`ModelView`). A functional model is not
    checked.

    Parameters
    ----------
    model : torch.nn.Module or callable
    allow_train_mode : bool
    """
    if not isinstance(model, nn.Module):
        return
    bad, norms = [], []
    for name, m in model.named_modules():
        if not m.training:
            continue
        label = name or "<root>"
        if isinstance(m, _STOCHASTIC) and m.p > 0:
            bad.append(f"{label} ({type(m).__name__}, p={m.p})")
        elif isinstance(m, _NORMS):
            norms.append(f"{label} ({type(m).__name__})")
        elif isinstance(m, nn.MultiheadAttention) and m.dropout > 0:
            bad.append(f"{label} (MultiheadAttention, dropout={m.dropout})")
    if bad:
        raise ValueError(
            "the model is in train mode with stochastic layers: " + ", ".join(bad[:5])
            + ("..." if len(bad) > 5 else "") + ". They draw new masks on every pass; call "
            "model.eval() first (allow_train_mode=True covers batch-statistics layers only)"
        )
    if norms and not allow_train_mode:
        raise ValueError(
            "the model is in train mode with batch-dependent layers: " + ", ".join(norms[:5])
            + ("..." if len(norms) > 5 else "") + ". Call model.eval() first (running "
            "statistics), or pass allow_train_mode=True for the curvature with batch "
            "statistics (per batch; the running statistics are left untouched)"
        )


# ---------------------------------------------------------------------- outputs
def select_output(out: Any, output: Any, b: int, *, tensor: bool = True) -> Any:
    """The model's outputs picked by ``output=``: ``None``, a field name or a callable.

    ``None`` keeps ``out``; a name takes ``out[name]`` (a mapping, transformers'
    ``ModelOutput``) or ``out.name``; a callable returns ``output(out)``. With
    ``tensor=True`` the result must be a tensor (GGN, Fisher, NTK); the error names the
    fields to choose from.
    """
    if output is not None:
        if callable(output):
            out = output(out)
        elif isinstance(out, Mapping) and output in out:
            out = out[output]
        elif hasattr(out, output):
            out = getattr(out, output)
        else:
            raise ValueError(f"the model output ({type(out).__name__}) at batch {b} has no "
                             f"field {output!r}{_fields_hint(out)}")
    if tensor and not isinstance(out, torch.Tensor):
        raise TypeError(
            f"the model returns a {type(out).__name__} at batch {b}; the curvature needs one "
            f"tensor of outputs: pass output='logits' (a field name) or "
            f"output=callable(out) -> tensor{_fields_hint(out)}"
        )
    return out


def _fields_hint(out: Any) -> str:
    if isinstance(out, Mapping):
        return f" (its fields: {', '.join(repr(k) for k in out)})"
    if isinstance(out, (tuple, list)):
        return f" (a {type(out).__name__} of {len(out)}: output=lambda out: out[0]?)"
    return ""


def _compiled(model: nn.Module) -> str | None:
    for name, m in model.named_modules():
        if type(m).__name__ == "OptimizedModule" and hasattr(m, "_orig_mod"):
            return name or "<root>"
    return None


# ---------------------------------------------------------------------- functional models
class FunctionalModel(nn.Module):
    """A function ``fn(params, inputs)`` of a parameter dict, held as a module.

    The tensors of ``params`` become the module's parameters under their names (dotted
    names nest, so ``"0.weight"`` belongs to a submodule ``"0"``), sharing storage with
    the given tensors, which are not modified; ``forward(inputs)`` calls ``fn`` with the
    module's current parameters, so every module tool (``functional_call``, name and
    prefix selection, per-layer blocks) applies.

    Parameters
    ----------
    fn : callable
        ``fn(params, inputs) -> outputs``.
    params : dict
        Name -> floating tensor.
    """

    def __init__(self, fn: Callable, params: Any) -> None:
        if not callable(fn):
            raise TypeError("model must be a torch.nn.Module or a function "
                            f"model(params, inputs), got {type(fn).__name__}")
        if not isinstance(params, Mapping) or not params:
            raise TypeError(
                "model must be a torch.nn.Module, or a function model(params, inputs) with "
                f"params= the dict of its parameter tensors; got a {type(fn).__name__} and "
                f"params of type {type(params).__name__}"
            )
        super().__init__()
        self.fn = fn
        self.param_keys = list(params)
        for name, t in params.items():
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"params of a functional model must be floating tensors; "
                                f"{name!r} is {type(t).__name__}")
            owner: nn.Module = self
            *path, leaf = str(name).split(".")
            try:
                for part in path:
                    if part not in owner._modules:
                        owner.add_module(part, nn.Module())
                    owner = owner._modules[part]
                owner.register_parameter(leaf, nn.Parameter(t.detach(), requires_grad=True))
            except (KeyError, TypeError) as err:
                raise TypeError(f"params name {name!r} cannot be used ({err})") from err

    def forward(self, inputs: Any) -> Any:
        """``fn(params, inputs)`` with the current parameters."""
        return self.fn({n: self._tensor(n) for n in self.param_keys}, inputs)

    def _tensor(self, name: str) -> torch.Tensor:
        # not get_parameter: under functional_call the entries are plain tensors
        path, _, leaf = str(name).rpartition(".")
        return getattr(self.get_submodule(path) if path else self, leaf)


# ---------------------------------------------------------------------- parameters
class ModelView:
    """The model (or its float64 copy) with the chosen parameters as named leaves.

    Parameters
    ----------
    model : torch.nn.Module or callable
        A module, or a function ``model(params, inputs)`` of a dict of parameter tensors
        (``params=`` is then that dict) and a batch's model inputs as they are.
    params : None, str, tensor, module, list of these, or dict
        For a module: ``None`` (every parameter with ``requires_grad``), exact names,
        prefixes (``"encoder.layer.1"``: everything under it), glob patterns
        (``"*.attn.*"``), tensors, submodules, or a list of these; a dict selects its
        values. The flat vector follows the order given. Tied tensors (one tensor under
        several names) are one parameter, named by its first name in
        ``named_parameters``. For a function: the dict of parameters it takes.
    dtype : torch.dtype or None
        Evaluate in this precision; a different one from the model's makes a private
        deep copy of the model converted to it (the user's model is not touched).
    allow_train_mode : bool
        Let train-mode BatchNorm layers normalise by batch statistics; their running
        statistics are not updated by the operator's forwards.

    Notes
    -----
    Forwards run with autocast disabled: curvature is computed in the parameters'
    dtype, and a model whose outputs come back in half precision is refused.
    """

    def __init__(self, model: Any, params: Any, dtype: Any, *,
                 allow_train_mode: bool = False) -> None:
        self.allow_train_mode = bool(allow_train_mode)
        self.fn = None
        if not isinstance(model, (nn.Module, FunctionalModel)):
            model, params = FunctionalModel(model, params), None
        if isinstance(model, FunctionalModel):
            self.fn = model.fn
        self._init_module(model, params, dtype)
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.num_params = int(sum(self.numels))

    def _set_dtype(self, first: torch.Tensor, dtype: Any) -> None:
        self.model_dtype = first.dtype
        self.dtype = first.dtype if dtype is None else dtype
        if self.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {self.dtype} "
                            "(half precision: pass dtype=torch.float32)")
        self.device = first.device

    def _init_module(self, model: nn.Module, params: Any, dtype: Any) -> None:
        where = _compiled(model)
        if where is not None:
            raise TypeError(
                f"the model (at {where}) is compiled with torch.compile, whose graphs have no "
                "double backward; pass the module before compiling (model._orig_mod: the "
                "same parameters)"
            )
        named = dict(model.named_parameters())
        if not named:
            raise ValueError("the model has no parameters")
        names = select_names(model, params)
        first = named[names[0]]
        self._set_dtype(first, dtype)
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
        chosen = set(names)
        self.frozen = {k: v.detach() for k, v in named.items() if k not in chosen}
        self.buffers = dict(model.named_buffers())

    # ------------------------------------------------------------------ evaluation
    @contextmanager
    def _forward(self) -> Iterator[None]:
        """Autocast off; train-mode BatchNorm leaves its running statistics alone."""
        with ExitStack() as stack:
            dev = self.device.type
            try:
                on = torch.is_autocast_enabled(dev)
            except (RuntimeError, TypeError):  # a device type autocast does not know
                on = False
            if on:
                stack.enter_context(torch.autocast(dev, enabled=False))
            norms = [] if not self.allow_train_mode else [
                m for m in _train_norms(self.module) if m.track_running_stats]
            for m in norms:
                m.track_running_stats = False  # batch statistics, no buffer update
            try:
                yield
            finally:
                for m in norms:
                    m.track_running_stats = True

    def call(self, inputs: Any, kind: str = "pair") -> Any:
        """Run the model on a batch's ``inputs`` (``kind``: the batch's format)."""
        with self._forward():
            args, kwargs = ((inputs,), {}) if self.fn is not None else call_args(inputs, kind)
            return self.module(*args, **kwargs)

    def call_functional(self, pdict: dict, inputs: Any, kind: str = "pair") -> Any:
        """Run the model with the chosen parameters replaced by ``pdict``."""
        with self._forward():
            state = {**self.frozen, **self.buffers, **pdict}
            args, kwargs = ((inputs,), {}) if self.fn is not None else call_args(inputs, kind)
            return torch.func.functional_call(self.module, state, args, kwargs)

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
