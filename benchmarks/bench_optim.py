"""Optimizers: SNR-gated AdamW on grokking, and the spectral learning rate.

Run ``python benchmarks/bench_optim.py [--quick] [--out DIR]``: writes
``DIR/benchmarks_optim.md`` and ``DIR/img/optim_*.png`` (default ``DIR = docs``),
reading per-run JSON records from ``benchmarks/results/optim/`` and computing only the
runs that are missing there (``final/``: the 5-seed comparison; ``study/``: the seed-0
gate and learning-rate study, made with ``python benchmarks/bench_optim.py grok NAME
--cfg JSON --batch B``). ``--quick`` runs one seed with a 300-step cap into
``results/optim/quick/`` and writes ``benchmarks_optim_quick.md``.

The paper's setting (modular division at 25% train, a small transformer) is in
``benchmarks/optim_division.py``; its runs are cached in ``results/optim/division/``.

Earlier grokking setup (ANCHORS.md): modular addition ``a + b mod 97`` over all 9,409 pairs,
train fraction 0.5 (a random half, drawn per seed), an embedding MLP: one shared
embedding table 97 x 128, the two token embeddings concatenated (256) -> Linear 256 ->
ReLU -> Linear 97, cross-entropy; PyTorch's default initialisation drawn from a seeded
``torch.Generator``. The first layer is evaluated as ``(E W_a^T)[a] + (E W_b^T)[b]``:
the same function and parameters as ``W [E[a]; E[b]]`` at a fraction of the cost.
Seeds are paired: the split, initialisation and minibatch order are the same for both
optimizers. Full batch (4,704 examples) or minibatches of 512 drawn by reshuffling each
epoch. Validation accuracy on the other half every ``eval_every`` steps; a run stops at
99% or at the step cap. The metric is steps, not seconds. Both optimizers use betas
(0.9, 0.98) and decoupled weight decay 1.0 (the grokking literature's AdamW setting);
SNRAdamW adds rho 0.99 and holds its gate open for the first 100 steps.

Spectral LR setup: MLP 64-64-64-10 tanh on sklearn digits (1,500 training / 297 test
images), minibatch 64, SGD with momentum 0.9, 1,500 steps, a 100-step linear warm-up for
every schedule; :class:`hessian.SpectralLR` (10 Lanczos steps every 10 steps on a fixed
curvature batch of 256 training images) against a grid of constant learning rates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import optim_division  # noqa: E402  (the paper's setting: division mod 97, a transformer)
from optim_spectral import (  # noqa: E402
    plot_spectral,
    slr_warmup,
    spectral_runs,
    spectral_table,
    train_digits,
)

from hessian.training.optim import SNRAdamW  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "optim"
P = 97


# ====================================================================== grokking
class EmbedMLP(nn.Module):
    """Shared embedding, concatenation, one hidden ReLU layer, logits over ``P``."""

    def __init__(self, p: int = P, d: int = 128, hidden: int = 256,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.emb = nn.Parameter(torch.empty(p, d))
        self.w1 = nn.Parameter(torch.empty(hidden, 2 * d))
        self.b1 = nn.Parameter(torch.empty(hidden))
        self.w2 = nn.Parameter(torch.empty(p, hidden))
        self.b2 = nn.Parameter(torch.empty(p))
        g = generator
        with torch.no_grad():  # nn.Embedding: N(0, 1); nn.Linear: U(+-1/sqrt(fan_in))
            self.emb.normal_(generator=g)
            for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
                bound = 1.0 / np.sqrt(w.shape[1])
                w.uniform_(-bound, bound, generator=g)
                b.uniform_(-bound, bound, generator=g)
        self.d = d

    def forward(self, ab: torch.Tensor) -> torch.Tensor:
        d = self.d
        pa = self.emb @ self.w1[:, :d].T  # (p, hidden): the first layer per token
        pb = self.emb @ self.w1[:, d:].T
        h = torch.relu(pa[ab[:, 0]] + pb[ab[:, 1]] + self.b1)
        return h @ self.w2.T + self.b2


def modular_data(seed: int, frac: float = 0.5, p: int = P):
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    X = torch.stack([a.reshape(-1), b.reshape(-1)], 1)
    y = (X[:, 0] + X[:, 1]) % p
    return optim_division.split_pairs(X, y, frac, torch.Generator().manual_seed(10_000 + seed))


def make_optimizer(name: str, params: Any, cfg: dict):
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                 weight_decay=cfg["wd"])
    keys = ("gate", "softness", "alpha", "momentum_correction", "gate_weight_decay", "rho",
            "warmup", "reduction", "temperature")
    kw = {k: cfg[k] for k in keys if k in cfg}
    return SNRAdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]),
                            weight_decay=cfg["wd"], **kw)


def train_grok(cfg: dict, seed: int, batch: int | None, max_steps: int,
               eval_every: int = 10) -> dict:
    """One grokking run; returns the record (curves, steps to 95/99%)."""
    Xtr, ytr, Xva, yva = modular_data(seed)
    g = torch.Generator().manual_seed(seed)
    model = EmbedMLP(generator=g)
    opt = make_optimizer(cfg["opt"], model.parameters(), cfg)
    loss_fn = nn.CrossEntropyLoss()
    n = len(ytr)
    order, pos = None, n
    gb = torch.Generator().manual_seed(20_000 + seed)
    steps, val_acc, train_acc, gate_frac, wnorm = [], [], [], [], []
    hit95 = hit99 = None
    t0 = time.perf_counter()
    diverged = False
    for step in range(1, max_steps + 1):
        if batch is None or batch >= n:
            xb, yb = Xtr, ytr
        else:
            if pos + batch > n:
                order, pos = torch.randperm(n, generator=gb), 0
            idx = order[pos:pos + batch]
            pos += batch
            xb, yb = Xtr[idx], ytr[idx]
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == max_steps:
            with torch.no_grad():
                va = (model(Xva).argmax(1) == yva).float().mean().item()
                tr = (out.argmax(1) == yb).float().mean().item()  # this step's batch
                wn = float(torch.sqrt(sum((p * p).sum() for p in model.parameters())))
            if not np.isfinite(loss.item()):
                diverged = True
            steps.append(step)
            val_acc.append(va)
            train_acc.append(tr)
            wnorm.append(wn)
            gate_frac.append(opt.gate_fraction()[0] if hasattr(opt, "gate_fraction") else 1.0)
            if hit95 is None and va >= 0.95:
                hit95 = step
            if hit99 is None and va >= 0.99:
                hit99 = step
                break
            if diverged:
                break
    return {
        "cfg": cfg, "seed": seed, "batch": batch, "max_steps": max_steps,
        "steps": steps, "val_acc": val_acc, "train_acc": train_acc, "gate_frac": gate_frac,
        "weight_norm": wnorm, "hit95": hit95, "hit99": hit99, "diverged": diverged,
        "seconds": time.perf_counter() - t0, "load": os.getloadavg()[0],
    }


def run_key(name: str, seed: int, batch: int | None) -> str:
    return f"{name}__b{batch or 'full'}__s{seed}"


def cached_run(folder: Path, name: str, cfg: dict, seed: int, batch: int | None,
               max_steps: int, eval_every: int = 10) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_key(name, seed, batch)}.json"
    for f in (folder, RESULTS / "study"):  # a study run with the same setup is reused
        cand = f / f"{run_key(name, seed, batch)}.json"
        if cand.exists():
            rec = json.loads(cand.read_text())
            if rec["cfg"] == cfg and (rec["max_steps"] >= max_steps or rec["hit99"]):
                return rec
    rec = train_grok(cfg, seed, batch, max_steps, eval_every)
    rec["name"] = name
    path.write_text(json.dumps(rec))
    return rec


# ====================================================================== the report
BASE = {"lr": 1e-3, "betas": [0.9, 0.98], "wd": 1.0}


def snr_cfg(gate: str, softness: float, alpha: float, gwd: bool = False, **kw: Any) -> dict:
    return {"opt": "snr", **BASE, "gate": gate, "softness": softness, "alpha": alpha,
            "momentum_correction": True, "gate_weight_decay": gwd, **kw}


def _tag(lr: float) -> str:
    """Run-name suffix of a learning rate: '' for 1e-3, '_lr4e-3', '_lr1.6e-2'..."""
    if lr == BASE["lr"]:
        return ""
    exp = int(np.floor(np.log10(lr)))
    return f"_lr{lr / 10**exp:g}e{exp}"


def lr_cfgs(lr: float) -> dict:
    """The compared configurations at learning rate ``lr`` (run names as in the study)."""
    tag = _tag(lr)
    cfgs = {f"adamw{tag}": {"opt": "adamw", **BASE, "lr": lr},
            f"hard_a0_free{tag}": snr_cfg("hard", 1.0, 0.0, lr=lr)}
    if lr == BASE["lr"]:  # the optimizer theory page's gate (alpha = 1), as probed before
        cfgs["hard_a1_free"] = snr_cfg("hard", 1.0, 1.0)
    return cfgs


#: Learning rates of the 5-seed comparison: the grokking literature's 1e-3, an
#: intermediate one, and the best of the equal tuning grid (both optimizers).
FINAL_LRS = (1e-3, 4e-3, 3.2e-2)
TUNING_LRS = (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2)
REGIMES = {"full batch": (None, 20), "batch 512": (512, 10)}
CAP = 8000


def _describe(cfg: dict) -> str:
    if cfg["opt"] == "adamw":
        return f"AdamW lr {cfg['lr']:g}"
    d = (f"SNRAdamW {cfg['gate']} tau={cfg['softness']:g} alpha={cfg['alpha']:g}, decay "
         f"{'gated' if cfg['gate_weight_decay'] else 'ungated'}")
    return d + f", lr {cfg['lr']:g}"


def _fmt_steps(vals: list) -> str:
    got = [v for v in vals if v is not None]
    if not got:
        return f"not reached (cap {CAP})"
    med = np.median([v if v is not None else np.inf for v in vals])
    med_s = f"{med:.0f}" if np.isfinite(med) else f">{CAP}"
    miss = len(vals) - len(got)
    return f"{med_s} [{min(got)}-{max(got)}]" + (f", {miss} not reached" if miss else "")


def grok_curves(recs: list[dict], grid: np.ndarray) -> np.ndarray:
    """Validation accuracy on ``grid``, carried forward after a run stopped at 99%."""
    out = []
    for r in recs:
        st, va = np.array(r["steps"]), np.array(r["val_acc"])
        y = np.interp(grid, st, va, left=0.0)
        y[grid > st[-1]] = va[-1]
        out.append(y)
    return np.array(out)


def grok_final(seeds: list[int], folder: Path, cap: int, lrs=FINAL_LRS) -> dict:
    res: dict = {}
    for lr in lrs:
        for regime, (batch, ev) in REGIMES.items():
            for name, cfg in lr_cfgs(lr).items():
                res[(lr, regime, name)] = [cached_run(folder, name, cfg, s, batch, cap, ev)
                                           for s in seeds]
    return res


def grok_table(res: dict) -> list[str]:
    lines = ["| lr | regime | optimizer | steps to 95% | steps to 99% | paired ratio "
             "AdamW/SNR at 99% (median [range]) | open gates at the end |",
             "|---|---|---|---|---|---|---|"]
    lrs = sorted({k[0] for k in res})
    for lr in lrs:
        cfgs = lr_cfgs(lr)
        base_name = next(iter(cfgs))
        for regime in REGIMES:
            base = res[(lr, regime, base_name)]
            for name, cfg in cfgs.items():
                recs = res[(lr, regime, name)]
                ratio, gates = "", ""
                if name != base_name:
                    rs = [a["hit99"] / b["hit99"] for a, b in zip(base, recs, strict=True)
                          if a["hit99"] and b["hit99"]]
                    ratio = (f"{np.median(rs):.2f}x [{min(rs):.2f}-{max(rs):.2f}]" if rs
                             else "n/a")
                    gates = f"{np.median([r['gate_frac'][-1] for r in recs]):.0%}"
                lines.append(f"| {lr:g} | {regime} | {_describe(cfg)} | "
                             f"{_fmt_steps([r['hit95'] for r in recs])} | "
                             f"{_fmt_steps([r['hit99'] for r in recs])} | {ratio} | {gates} |")
    return lines


def tuning_table() -> list[str]:
    """Seed-0 steps to 99% over the same learning-rate grid for both optimizers."""
    head = "| regime | optimizer | " + " | ".join(f"lr {lr:g}" for lr in TUNING_LRS) + " |"
    lines = [head, "|---|---|" + "---|" * len(TUNING_LRS)]
    for regime, (batch, _) in REGIMES.items():
        for kind in ("adamw", "hard_a0_free"):
            cells = []
            for lr in TUNING_LRS:
                tag = _tag(lr)
                f = RESULTS / "study" / f"{run_key(kind + tag, 0, batch)}.json"
                r = json.loads(f.read_text()) if f.exists() else None
                cells.append("-" if r is None else str(r["hit99"] or "not reached"))
            label = "AdamW" if kind == "adamw" else "SNRAdamW hard, alpha=0"
            lines.append(f"| {regime} | {label} | " + " | ".join(cells) + " |")
    return lines


def study_table() -> list[str]:
    lines = ["| regime | configuration (seed 0, lr 1e-3, wd 1) | steps to 95% | steps to 99% | "
             "open gates at the end | val. acc. at the end |", "|---|---|---|---|---|---|"]
    rows = []
    for f in sorted((RESULTS / "study").glob("*.json")):
        r = json.loads(f.read_text())
        if r["seed"] != 0 or r["cfg"]["lr"] != BASE["lr"]:
            continue
        regime = "full batch" if r["batch"] is None else f"batch {r['batch']}"
        rows.append((regime, r["cfg"]["opt"] != "adamw", _describe(r["cfg"]), r))
    for regime, _, desc, r in sorted(rows, key=lambda x: (x[0], x[1], x[2])):
        h95 = r["hit95"] or f"- (cap {r['max_steps']})"
        h99 = r["hit99"] or f"- (cap {r['max_steps']})"
        lines.append(f"| {regime} | {desc} | {h95} | {h99} | {r['gate_frac'][-1]:.0%} | "
                     f"{r['val_acc'][-1]:.3f} |")
    return lines


def plot_grok(res: dict, out: Path, lr: float = 1e-3) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectra.plot import COLORS, style_axes

    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8), dpi=150, layout="constrained")
    colors = [COLORS["reference"], COLORS["estimate"], COLORS["nodes"]]
    for ax, regime in zip(axes, REGIMES, strict=True):
        grid = np.arange(0, CAP + 1, 10)
        last = 0
        for (name, cfg), c in zip(lr_cfgs(lr).items(), colors, strict=True):
            recs = res[(lr, regime, name)]
            Y = grok_curves(recs, grid)
            ax.fill_between(grid, Y.min(0), Y.max(0), color=c, alpha=0.2, linewidth=0)
            ax.plot(grid, np.median(Y, 0), color=c, label=_describe(cfg))
            last = max(last, max(r["steps"][-1] for r in recs if r["hit99"])
                       if any(r["hit99"] for r in recs) else 0)
        ax.set_xlim(0, min(CAP, 1.3 * last) if last else CAP)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"a + b mod 97, {regime}: median and range of {len(recs)} seeds",
                     fontsize=9)
        style_axes(ax, xlabel="step", ylabel="validation accuracy")
    axes[0].legend(frameon=False, fontsize=7, loc="upper left")
    path = out / "optim_grokking.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def step_timing(repeats: int = 5, steps: int = 100) -> list[str]:
    """Milliseconds per ``optimizer.step()`` on the grokking MLP's parameters."""
    model = EmbedMLP(generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    rows = ["| optimizer | implementation | ms per step (median of "
            f"{repeats} x {steps} steps) |", "|---|---|---|"]
    for label, make in (("AdamW", lambda ps, fe: torch.optim.AdamW(ps, foreach=fe)),
                        ("SNRAdamW, hard gate (gated steps)",
                         lambda ps, fe: SNRAdamW(ps, gate="hard", alpha=0.0, warmup=0,
                                                 foreach=fe))):
        for fe in (False, True):
            params = [p.detach().clone().requires_grad_() for p in model.parameters()]
            for p, gr in zip(params, grads, strict=True):
                p.grad = gr.clone()
            opt = make(params, fe)
            for _ in range(5):
                opt.step()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                for _ in range(steps):
                    opt.step()
                times.append((time.perf_counter() - t) / steps * 1e3)
            rows.append(f"| {label} | {'foreach' if fe else 'single-tensor'} | "
                        f"{np.median(times):.2f} |")
    n = sum(p.numel() for p in model.parameters())
    return rows + ["", f"{n:,} parameters in 5 tensors, CPU, one thread; load average "
                   f"{os.getloadavg()[0]:.1f} on 2 cores while measuring."]


FINDINGS = """\
What we measured (setup in the module docstring of `benchmarks/bench_optim.py`; the
numbers are from the tables below):

- **The gate must test the momentum against the momentum's own noise.** The optimizer
  theory page's threshold `alpha = 1` compares the momentum with the noise of *one*
  batch, about 20 times the momentum's own noise variance (rho(beta1) ~ 0.053). At
  batch 512 it shut 97-100% of the coordinates after the warm-up, with every gate shape
  (hard, snr) and every decay rule, and no run learned (validation accuracy 0.000 after
  8,000 steps).
  With `alpha = 0` plus the momentum term (M-SVAG's calibration, now the default) the
  gate keeps 15-90% of the coordinates open at the end of a run and trains in both
  regimes. Stricter thresholds (softness 3 or 10) help a little at full batch but slow
  batch-512 training (softness 3) or stop it (softness 10).
- **Weight decay must stay ungated.** Scaling the decay by the gate freezes closed
  coordinates and removes the regularisation that drives grokking: validation accuracy
  0.25 after 8,000 steps at batch 512 (AdamW: 99% at 3,820). With the decay ungated and
  the gate calibrated as above, closed coordinates shrink but the network does not
  collapse.
- **Speed-up.** At the literature setting (lr 1e-3, weight decay 1), full batch, the
  calibrated gate reaches 99% validation accuracy 1.19x sooner than AdamW (median of 5
  paired seeds, range 1.16-1.31x) and the optimizer theory page's `alpha = 1` gate 1.34x
  sooner (1.26-1.41x; the earlier probe saw 1.4x); at batch 512 the calibrated gate is 0.94x
  (0.88-0.97x, slower) and the `alpha = 1` gate never learns. Nothing near the claimed
  5x. With the learning rate tuned on the same grid for both (1e-3 ... 6.4e-2, seed 0),
  both reach 99% in 150-160 steps at lr 3.2e-2, mostly inside the gate's 100-step
  warm-up: tuned, the two are equal (1.00x).
- **Tuning effort.** AdamW: 7 learning rates. SNRAdamW: the same 7 learning rates, plus
  the 10 gate configurations of the study table at lr 1e-3 (seed 0), which were needed to
  find a gate that trains at batch 512 at all. The 5-seed configuration (hard gate,
  softness 1, alpha 0, ungated decay) was fixed before the 5-seed runs and is the same in
  both regimes.
- **Spectral learning rate.** On the digits MLP, SpectralLR kept base rates of 1 and 3
  (where constant rates diverge) from diverging in 3/3 seeds, but ended at training loss
  0.26-0.87 against 0.00017 for the best constant rate (0.3); with base 0.3 the cap
  never bound. It guards against too-large rates; it does not replace tuning."""


def run(quick: bool = False, out: Path | None = None) -> str:
    """Compute (or load) every result and return the Markdown section."""
    torch.set_num_threads(1)
    out = out or (HERE.parent / "docs")
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)
    global CAP
    if quick:
        CAP = 300
        res = grok_final([0], RESULTS / "quick", CAP, lrs=(1e-3,))
        slr = {"const": {str(lr): [train_digits("sgd", lr, 0, 200, warmup=slr_warmup)]
                         for lr in (0.3, 1.0)},
               "spectral": {f"1.0/{c}": [train_digits("sgd", 1.0, 0, 200, spectral=dict(
                   every=10, factor=c, num_steps=10, base=slr_warmup))] for c in (0.5, 0.25)}}
    else:
        res = grok_final([0, 1, 2, 3, 4], RESULTS / "final", CAP)
        slr = spectral_runs([0, 1, 2], 1500)
    p1 = plot_grok(res, img)
    p2 = plot_spectral(slr, img)
    load = os.getloadavg()[0]
    md = ["# Optimizers: SNR-gated AdamW and the spectral learning rate", ""]
    md += [f"Produced by `python benchmarks/bench_optim.py{' --quick' if quick else ''}` "
           f"(raw per-run JSON in `benchmarks/results/optim/`); load average at the end "
           f"{load:.1f} on 2 cores. Steps, not seconds, are the metric.", ""]
    md += ["## The paper's setting: a / b mod 97 at 25% train, a 1-layer transformer", ""]
    md += [optim_division.FINDINGS, ""]
    md += optim_division.section(out)
    md += ["## Earlier setting: a + b mod 97 at 50% train, an embedding MLP", ""]
    md += [FINDINGS, ""]
    md += ["### Grokking: a + b mod 97, AdamW vs SNRAdamW, 5 paired seeds", ""]
    md += grok_table(res) + ["", f"![grokking]({p1.relative_to(out)})", ""]
    md += ["### Equal tuning: the same learning-rate grid for both (seed 0, steps to 99%)", ""]
    md += tuning_table() + [""]
    md += ["### What the gate needs: every gate configuration tried (seed 0)", ""]
    md += study_table() + [""]
    md += ["## Cost of one optimizer step", ""]
    md += step_timing(3 if quick else 5, 20 if quick else 100) + [""]
    md += ["## Spectral learning rate vs constant rates (digits MLP, 1500 steps, 3 seeds)", ""]
    md += spectral_table(slr) + ["", f"![spectral lr]({p2.relative_to(out)})", ""]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs")
    a = ap.parse_args(argv)
    text = run(a.quick, a.out)
    name = "benchmarks_optim_quick.md" if a.quick else "benchmarks_optim.md"
    (a.out / name).write_text(text + "\n")
    print(text)


# ---------------------------------------------------------------------- CLI for studies
def _cli_grok(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--cfg", required=True, help="JSON config")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--batch", type=int, default=0, help="0: full batch")
    ap.add_argument("--max-steps", type=int, default=10000)
    ap.add_argument("--folder", type=Path, default=RESULTS / "study")
    ap.add_argument("--eval-every", type=int, default=10)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = json.loads(a.cfg)
    for s in (int(x) for x in a.seeds.split(",")):
        r = cached_run(a.folder, a.name, cfg, s, a.batch or None, a.max_steps, a.eval_every)
        print(f"{a.name} seed {s} batch {a.batch or 'full'}: 95% at {r['hit95']}, 99% at "
              f"{r['hit99']}, final val {r['val_acc'][-1]:.3f}, gate {r['gate_frac'][-1]:.3f}, "
              f"{r['seconds']:.0f} s (load {r['load']:.1f})", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "grok":
        _cli_grok(sys.argv[2:])
    else:
        main()
