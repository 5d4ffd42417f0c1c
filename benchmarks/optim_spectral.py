"""The spectral learning rate against constant rates on the digits MLP (for bench_optim).

Setup: MLP 64-64-64-10 tanh on sklearn digits (1,500 training / 297 test images),
minibatch 64, SGD with momentum 0.9, 1,500 steps, a 100-step linear warm-up for every
schedule; :class:`hessian.SpectralLR` (10 Lanczos steps every 10 steps on a fixed
curvature batch of 256 training images) against a grid of constant learning rates.
Results are cached in ``benchmarks/results/optim/spectral_lr_*.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optim_division import epoch_batches  # noqa: E402

import hessian  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "optim"


def digits_split():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    tr, te = perm[:1500], perm[1500:]
    return X[tr], y[tr], X[te], y[te]


def digits_mlp(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 10))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                bound = 1.0 / np.sqrt(m.weight.shape[1])
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return model


def train_digits(kind: str, lr: float | None, seed: int, steps: int, batch: int = 64,
                 spectral: dict | None = None, warmup: Any = None) -> dict:
    """SGD (momentum 0.9) or Adam on digits; ``lr`` (times ``warmup(step)``) or SpectralLR."""
    Xtr, ytr, Xte, yte = digits_split()
    model = digits_mlp(seed)
    loss_fn = nn.CrossEntropyLoss()
    if kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = None
    if spectral is not None:
        curv = (Xtr[:256], ytr[:256])  # the fixed curvature batch (4 training batches)
        sched = hessian.SpectralLR(opt, model, loss_fn, curv, rng=seed, **spectral)
    elif warmup is not None:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup)
    batches = epoch_batches(len(ytr), batch, torch.Generator().manual_seed(100 + seed))
    curve, lrs = [], []
    diverged_at = None
    for t in range(1, steps + 1):
        idx = next(batches)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xtr[idx]), ytr[idx])
        if not torch.isfinite(loss):
            diverged_at = t
            break
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if t % 25 == 0 or t == steps:
            with torch.no_grad():
                full = float(loss_fn(model(Xtr), ytr))
                acc = float((model(Xte).argmax(1) == yte).float().mean())
            curve.append((t, full, acc))
            lrs.append(opt.param_groups[0]["lr"])
            if not np.isfinite(full) or full > 1e3:
                diverged_at = t
                break
    spec = spectral is not None
    hist = [(r.step, r.ritz, r.upper, r.cap) for r in sched.history] if spec else []
    return {"kind": kind, "lr": lr, "seed": seed, "steps": steps, "curve": curve, "lrs": lrs,
            "diverged_at": diverged_at, "history": hist,
            "hvps": sum(r.num_matvecs for r in sched.history) if spec else 0}


SLR_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
SLR_SPECTRAL = ((0.3, 0.5), (1.0, 0.5), (3.0, 0.5), (1.0, 0.25), (3.0, 0.25))  # (base, c)


def slr_warmup(t: int) -> float:
    return min(1.0, (t + 1) / 100)


def spectral_runs(seeds: list[int], steps: int) -> dict:
    path = RESULTS / f"spectral_lr_{len(seeds)}x{steps}.json"
    if path.exists():
        return json.loads(path.read_text())
    out: dict = {"const": {}, "spectral": {}}
    for lr in SLR_GRID:
        out["const"][str(lr)] = [train_digits("sgd", lr, s, steps,
                                              spectral=None, warmup=slr_warmup)
                                 for s in seeds]
    for lr, c in SLR_SPECTRAL:
        out["spectral"][f"{lr}/{c}"] = [
            train_digits("sgd", lr, s, steps, spectral=dict(every=10, factor=c,
                                                            num_steps=10, base=slr_warmup))
            for s in seeds]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def _status(r: dict) -> str:
    if r["diverged_at"] is not None:
        return f"diverged at {r['diverged_at']}"
    return "failed (loss above its start)" if r["curve"][-1][1] > np.log(10) else "stable"


def spectral_table(out: dict) -> list[str]:
    lines = ["| schedule (SGD, momentum 0.9, 100-step warm-up) | final train loss (median "
             "[range]) | test accuracy (median) | runs stable | HVPs per run |",
             "|---|---|---|---|---|"]
    for kind in ("const", "spectral"):
        for lr, recs in out[kind].items():
            if kind == "const":
                label = f"constant lr {lr}"
            else:
                b, c = lr.split("/")
                label = f"SpectralLR, base lr {b}, c = {c} (every 10 steps)"
            fl = [r["curve"][-1][1] if r["curve"] else np.inf for r in recs]
            acc = [r["curve"][-1][2] if r["curve"] else 0.0 for r in recs]
            ok = sum(_status(r) == "stable" for r in recs)
            lines.append(f"| {label} | {np.median(fl):.2g} [{min(fl):.2g}-"
                         f"{max(fl):.2g}] | {np.median(acc):.3f} | {ok}/{len(recs)} | "
                         f"{recs[0]['hvps']} |")
    return lines


def plot_spectral(out: dict, dest: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectra.plot import COLORS, style_axes

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.0, 3.8), dpi=150, layout="constrained")
    best = min(out["const"], key=lambda k: np.median([r["curve"][-1][1] for r in
                                                      out["const"][k]]))
    series = [("const", best, COLORS["reference"], f"constant lr {best} (best of grid)"),
              ("const", "1.0", COLORS["nodes"], "constant lr 1.0"),
              ("spectral", "1.0/0.5", COLORS["estimate"], "SpectralLR, base 1.0, c = 0.5"),
              ("spectral", "1.0/0.25", COLORS["band"], "SpectralLR, base 1.0, c = 0.25")]
    for kind, lr, color, label in series:
        r = out[kind][lr][0]
        c = np.array(r["curve"])
        ax1.plot(c[:, 0], np.clip(c[:, 1], 1e-5, 1e3), color=color, label=label)
        ax2.plot(c[:, 0], r["lrs"], color=color, label=label)
    ax1.set_yscale("log")
    ax2.set_yscale("log")
    ax1.set_title("MLP 64-64-64-10 on digits, seed 0", fontsize=10)
    style_axes(ax1, xlabel="step", ylabel="training loss (full train set)")
    style_axes(ax2, xlabel="step", ylabel="learning rate")
    ax1.legend(frameon=False, fontsize=7)
    path = dest / "optim_spectral_lr.png"
    fig.savefig(path)
    plt.close(fig)
    return path
