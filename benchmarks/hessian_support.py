"""What each curvature tool supports, measured on small float64 problems.

Each cell builds the tool's operator for one feature and compares a Hessian (or GGN)
vector product with impalpable's float64 operator, which ``tests/hessian`` checks
against dense ``torch.func`` references: *yes* (relative error under 1e-6), *wrong*
(with the error), *fails* (with the exception), *no API*.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hessian_common import CE, anchors_available, clear_grads
from hessian_models import gpt2
from torch import nn

import hessian

TOOLS = ("impalpable", "PyHessian", "curvlinops", "hessian-eigenthings")


def _mlp() -> tuple[nn.Module, list]:
    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    X = torch.randn(13, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (13,), generator=g)
    return m, [(X[:10], y[:10]), (X[10:], y[10:])]  # unequal batches


def _flat(out: Any) -> torch.Tensor:
    if isinstance(out, (list, tuple)):
        return torch.cat([o.reshape(-1) for o in out])
    return out.reshape(-1)


def _pyhessian_hv(model, data, v, loader: bool) -> torch.Tensor:
    import pyhessian
    from pyhessian.utils import hessian_vector_product

    clear_grads(model)
    ph = (pyhessian.hessian(model, CE, dataloader=data, cuda=False) if loader
          else pyhessian.hessian(model, CE, data=data, cuda=False))
    parts, o = [], 0
    for p in ph.params:
        parts.append(v[o:o + p.numel()].view_as(p))
        o += p.numel()
    out = ph.dataloader_hv_product(parts)[1] if loader else hessian_vector_product(
        ph.gradsH, ph.params, parts)
    clear_grads(model)
    return _flat(out)


# ---------------------------------------------------------------------- the features
def loaders(tool: str) -> tuple[Callable, Callable]:
    """Two unequal batches (10 and 3 samples) of an MLP, mean cross-entropy."""
    model, batches = _mlp()
    params = list(model.parameters())
    ref = hessian.HessianOperator(model, CE, batches)
    if tool == "impalpable":
        return ref.matvec, ref.matvec
    if tool == "PyHessian":
        return ref.matvec, lambda v: _pyhessian_hv(model, batches, v, loader=True)
    if tool == "curvlinops":
        from curvlinops import HessianLinearOperator

        A = HessianLinearOperator(model, CE, params, batches)
        return ref.matvec, lambda v: A @ v
    import hessian_eigenthings as he

    op = he.HessianOperator(model, batches, he.supervised_loss(CE))
    return ref.matvec, op.matvec


def subset(tool: str) -> tuple[Callable, Callable]:
    """The last layer's parameters only."""
    model, batches = _mlp()
    batch = batches[0]
    last = [model[2].weight, model[2].bias]
    ref = hessian.HessianOperator(model, CE, batch, params="2")
    if tool == "impalpable":
        return ref.matvec, ref.matvec
    if tool == "PyHessian":  # no argument: freeze the other parameters
        def hv(v):
            model[0].requires_grad_(False)
            try:
                return _pyhessian_hv(model, batch, v, loader=False)
            finally:
                model[0].requires_grad_(True)
        return ref.matvec, hv
    if tool == "curvlinops":
        from curvlinops import HessianLinearOperator

        A = HessianLinearOperator(model, CE, last, [batch])
        return ref.matvec, lambda v: A @ v
    import hessian_eigenthings as he

    op = he.HessianOperator(model, [batch], he.supervised_loss(CE),
                            param_filter=lambda n, p: n.startswith("2."))
    return ref.matvec, op.matvec


def ggn(tool: str) -> tuple[Callable, Callable]:
    """The generalised Gauss-Newton matrix over two unequal batches."""
    model, batches = _mlp()
    ref = hessian.GGNOperator(model, CE, batches)
    if tool == "impalpable":
        return ref.matvec, ref.matvec
    if tool == "PyHessian":
        raise NotImplementedError
    if tool == "curvlinops":
        from curvlinops import GGNLinearOperator

        A = GGNLinearOperator(model, CE, list(model.parameters()), batches)
        return ref.matvec, lambda v: A @ v
    import hessian_eigenthings as he

    op = he.GGNOperator(model, batches, he.supervised_forward, he.supervised_loss_of_output(CE))
    return ref.matvec, op.matvec


def functional(tool: str) -> tuple[Callable, Callable]:
    """A model written as ``f(params, x)`` with a dict of tensors."""
    model, batches = _mlp()
    pdict = {n: p.detach().clone() for n, p in model.named_parameters()}

    def f(p, x):
        return torch.tanh(x @ p["0.weight"].T + p["0.bias"]) @ p["2.weight"].T + p["2.bias"]

    ref = hessian.HessianOperator(model, CE, batches)
    if tool == "impalpable":
        op = hessian.HessianOperator(f, CE, batches, params=pdict)
        return ref.matvec, op.matvec
    if tool == "curvlinops":  # a callable of the inputs, over leaves it closes over
        from curvlinops import HessianLinearOperator

        leaves = {n: t.clone().requires_grad_(True) for n, t in pdict.items()}
        A = HessianLinearOperator(lambda x: f(leaves, x), CE, list(leaves.values()), batches)
        return ref.matvec, lambda v: A @ v
    if tool == "hessian-eigenthings":
        import hessian_eigenthings as he

        op = he.HessianOperator(f, batches, he.supervised_loss(CE))
        return ref.matvec, op.matvec
    raise NotImplementedError


def dict_batches(tool: str) -> tuple[Callable, Callable]:
    """A GPT-2 on two dict batches with padding (-100 labels), 15 and 8 counted tokens."""
    built = gpt2(layers=1, width=16, heads=2, vocab=23, positions=16, batch=3, seq=8)
    if built is None:
        raise ModuleNotFoundError("transformers is not installed")
    model, batch = built
    model = model.double()
    b1 = {k: v.clone() for k, v in batch.items()}
    b1["labels"][:, 6:] = -100
    b1["attention_mask"][:, 6:] = 0
    b2 = {k: v[:2].clone() for k, v in batch.items()}
    b2["labels"][:, 5:] = -100
    b2["attention_mask"][:, 5:] = 0
    batches = [b1, b2]
    ref = hessian.HessianOperator(model, hessian.LanguageModelLoss(), batches, output="logits")
    if tool == "impalpable":
        return ref.matvec, ref.matvec
    if tool == "PyHessian":
        return ref.matvec, lambda v: _pyhessian_hv(model, batches, v, loader=True)
    if tool == "curvlinops":
        from curvlinops import HessianLinearOperator

        class Fwd(nn.Module):  # curvlinops reads named_parameters of model_func
            def __init__(self):
                super().__init__()
                self.lm = model

            def forward(self, X):
                out = self.lm(input_ids=X["input_ids"], attention_mask=X["attention_mask"])
                return out.logits[:, :-1].reshape(-1, out.logits.shape[-1])

        fwd = Fwd()
        data = [({k: b[k] for k in ("input_ids", "attention_mask")},
                 b["labels"][:, 1:].reshape(-1)) for b in batches]
        params = [p for p in fwd.parameters() if p.requires_grad]
        A = HessianLinearOperator(fwd, CE, params, data,
                                  batch_size_fn=lambda X: X["input_ids"].shape[0])
        return ref.matvec, lambda v: A @ v
    import hessian_eigenthings as he

    op = he.HessianOperator(model, batches, he.hf_lm_loss())
    return ref.matvec, op.matvec


FEATURES = [
    ("data loader, unequal batches", loaders),
    ("parameter subset (last layer)", subset),
    ("GGN", ggn),
    ("functional model f(params, x)", functional),
    ("dict batches, -100 labels (GPT-2)", dict_batches),
]


def _cell(feature: Callable, tool: str) -> str:
    try:
        ref, theirs = feature(tool)
        g = torch.Generator().manual_seed(0)
        dim = _dim(ref)
        v = torch.randn(dim, generator=g, dtype=torch.float64)
        want, got = ref(v), _flat(theirs(v)).detach().to(torch.float64)
        err = float((got - want).norm() / want.norm())
    except NotImplementedError:
        return "no API"
    except Exception as err_:  # noqa: BLE001 - the cell reports any failure
        return f"fails ({type(err_).__name__})"
    return "yes" if err < 1e-6 else f"**wrong** (rel. error {err:.2g})"


def _dim(matvec: Callable) -> int:
    return matvec.__self__.shape[1]


def table() -> list[str]:
    av = anchors_available()
    head = ["| feature | " + " | ".join(TOOLS) + " |", "|---" * (len(TOOLS) + 1) + "|"]
    rows = []
    for label, feature in FEATURES:
        cells = [("not importable" if t != "impalpable" and isinstance(av[t], Exception)
                  else _cell(feature, t)) for t in TOOLS]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    rows.append("| per-layer spectra in one call | yes (`per_layer=True`) | no API | no API "
                "(one operator per parameter list) | no API (one operator per filter) |")
    return head + rows
