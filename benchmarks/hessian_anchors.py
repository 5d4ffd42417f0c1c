"""The models people train, side by side with PyHessian, curvlinops and hessian-eigenthings.

A GPT-2 built from a config by transformers (:func:`hessian_models.gpt2`) and the
ResNet-18 of :mod:`hessian_models`; every tool computes the Hessian of the same loss
(``bench_hessian.models_part`` states how each is fed).
"""

from __future__ import annotations

import time
from typing import Any

import hessian_common as C
import numpy as np
import torch
from hessian_common import CE, Counted, anchors_available, interleaved, peak_bytes, seeded
from hessian_models import Logits, gpt2, resnet18, shifted_targets

import hessian

TOOLS = ("impalpable", "PyHessian", "curvlinops", "hessian-eigenthings")


# ---------------------------------------------------------------------- one model, four tools
class Tool:
    """One tool's Hessian of a case: ``hvp(v)``, ``top()``, ``trace20()`` on flat vectors."""

    def __init__(self, name: str, case: dict) -> None:
        self.name, self.case = name, case
        self.build()

    def build(self) -> None:
        c, name = self.case, self.name
        if name == "impalpable":
            self.op = hessian.HessianOperator(c["model"], c["loss"], c["batch"], **c["opts"])
        elif name == "PyHessian":
            import pyhessian

            C.clear_grads(c["tmodel"])
            self.op = pyhessian.hessian(c["tmodel"], CE, data=c["tdata"],
                                        cuda=C.DEVICE.type == "cuda")
        elif name == "curvlinops":
            from curvlinops import HessianLinearOperator

            params = [p for p in c["tmodel"].parameters() if p.requires_grad]
            self.op = HessianLinearOperator(c["tmodel"], CE, params, [c["tdata"]],
                                            check_deterministic=False)
        else:
            import hessian_eigenthings as he

            self.op = he.HessianOperator(c["model"], [c["batch"]], c["he_loss"])

    def hvp(self, v: torch.Tensor) -> Any:
        if self.name == "impalpable":
            return self.op.matvec(v)
        if self.name == "PyHessian":
            from pyhessian.utils import hessian_vector_product

            parts, o = [], 0
            for p in self.op.params:
                parts.append(v[o:o + p.numel()].view_as(p))
                o += p.numel()
            return hessian_vector_product(self.op.gradsH, self.op.params, parts)
        if self.name == "curvlinops":
            return self.op @ v
        return self.op.matvec(v)

    def top(self) -> tuple[float, int]:
        if self.name == "impalpable":
            before = self.op.num_matvecs
            r = hessian.top_eigenvalues(self.op, k=1, tol=1e-3, rng=0)
            return float(r.eigenvalues[0]), self.op.num_matvecs - before
        if self.name == "PyHessian":
            import sys

            phm = sys.modules["pyhessian.hessian"]
            counted = Counted(phm.hessian_vector_product)
            phm.hessian_vector_product = counted
            try:
                with seeded(0):
                    lam, _ = self.op.eigenvalues(maxIter=200, tol=1e-3)
            finally:
                phm.hessian_vector_product = counted.fn
            return float(lam[0]), counted.n
        if self.name == "curvlinops":
            from scipy.sparse.linalg import LinearOperator, eigsh

            A = self.op.to_scipy()
            mv = Counted(A.matvec)
            v0 = np.random.default_rng(0).standard_normal(A.shape[0]).astype(A.dtype)
            lam = eigsh(LinearOperator(A.shape, matvec=mv, dtype=A.dtype), k=1, which="LA",
                        tol=1e-3, v0=v0, return_eigenvectors=False)
            return float(lam[0]), mv.n
        import hessian_eigenthings as he

        self.op.matvec = Counted(self.op.matvec)
        try:
            lam, *_ = he.power_iteration_one(self.op, max_iter=200, tol=1e-3, seed=0)
            return float(lam), self.op.matvec.n
        finally:
            self.op.matvec = self.op.matvec.fn

    def trace20(self) -> float:
        if self.name == "impalpable":
            return float(hessian.trace(self.op, num_matvecs=20, method="hutchinson",
                                       rng=0).value)
        if self.name == "PyHessian":
            with seeded(0):
                return float(np.mean(self.op.trace(maxIter=20, tol=0.0)))
        if self.name == "curvlinops":
            from curvlinops import hutchinson_trace

            with seeded(0):
                return float(hutchinson_trace(self.op, 20))
        import hessian_eigenthings as he

        return float(he.trace(self.op, num_matvecs=20, method="hutchinson", seed=0).estimate)


def gpt2_case(quick: bool) -> dict | None:
    built = gpt2(batch=4 if quick else 8, seq=16 if quick else 32)
    if built is None:
        return None
    model, batch = built
    import hessian_eigenthings as he

    model, batch = model.to(C.DEVICE), {k: v.to(C.DEVICE) for k, v in batch.items()}
    tdata = (batch["input_ids"], shifted_targets(batch))
    B, T = batch["input_ids"].shape
    return dict(name="GPT-2 (transformers, 2 layers)", size=f"batch {B} x {T} tokens",
                model=model, batch=batch,
                loss=hessian.LanguageModelLoss(), opts={"output": "logits"},
                tmodel=Logits(model), tdata=tdata, he_loss=he.hf_lm_loss(),
                grad=lambda: model(**batch).loss)


def resnet_case(quick: bool) -> dict:
    import hessian_eigenthings as he

    model, (X, y) = resnet18(batch=8 if quick else 32, width=32 if quick else 64)
    model, X, y = model.to(C.DEVICE), X.to(C.DEVICE), y.to(C.DEVICE)
    return dict(name="ResNet-18" + (" (width 32)" if quick else ""), model=model,
                size=f"batch {len(X)} x 3 x 32 x 32",
                batch=(X, y), loss=CE, opts={}, tmodel=model, tdata=(X, y),
                he_loss=he.supervised_loss(CE), grad=lambda: CE(model(X), y))


def side_by_side(case: dict, quick: bool) -> list[str]:
    model = case["model"]
    params = [p for p in model.parameters() if p.requires_grad]
    P = sum(p.numel() for p in params)
    av = anchors_available()
    rows, tools = [], []
    for name in TOOLS:
        if name != "impalpable" and isinstance(av[name], Exception):
            rows.append(f"| {name} | not importable | | | | | | | |")
            continue
        try:
            tools.append(Tool(name, case))
        except Exception as err:  # noqa: BLE001 - a tool that cannot take this model
            rows.append(f"| {name} | fails: {type(err).__name__}: {str(err)[:60]} | | | | | | | |")
    g = torch.Generator().manual_seed(0)
    v = torch.randn(P, generator=g).to(C.DEVICE)

    def grad():
        torch.autograd.grad(case["grad"](), params)

    times = interleaved([grad] + [lambda t=t: t.hvp(v) for t in tools],
                        rounds=1 if quick else 3, inner=1)
    for t, th in zip(tools, times[1:], strict=True):
        t0 = time.perf_counter()
        (lam, n), mem = peak_bytes(t.top)
        t_top = time.perf_counter() - t0
        t0 = time.perf_counter()
        tr = t.trace20()
        t_tr = time.perf_counter() - t0
        capped = " (iteration cap: not converged)" if n >= 200 else ""
        rows.append(f"| {t.name} | {lam:.5g}{capped} | {n} | {t_top:.1f} | {tr:.5g} | {t_tr:.1f} | "
                    f"{1e3 * th:.0f} | {th / times[0]:.2f} | "
                    f"{'n/a' if mem is None else f'{mem / 2**20:.0f}'} |")
        C.clear_grads(model)
    head = [f"### {case['name']}: {P:,} parameters, {case['size']}", "",
            f"Gradient (forward + backward): {1e3 * times[0]:.0f} ms. Top eigenvalue to "
            "relative tolerance 1e-3: ours and curvlinops (scipy's eigsh) the largest, "
            "PyHessian and hessian-eigenthings by power iteration (the largest in magnitude; "
            "at most 200 products); trace: 20 Rademacher probes each (the values differ by "
            "the probes' draws). HVP: one product, median over rounds taken in turns.", "",
            "| tool | top eigenvalue | products | seconds | trace, 20 probes | seconds | "
            "HVP ms | HVP / gradient | peak MB (top eigenvalue) |",
            "|---|---|---|---|---|---|---|---|---|"]
    return head + rows
