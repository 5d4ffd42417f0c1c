"""Grokking in the paper's setting: modular division mod 97 at 25% train, a 1-layer transformer.

Used by ``benchmarks/bench_optim.py`` (the report) and runnable on its own to fill the
run cache: ``python benchmarks/optim_division.py study [--cap N] [--seeds 0,1,2]``
computes every missing run of the study and writes one JSON per run to
``benchmarks/results/optim/division/``; ``python benchmarks/optim_division.py speed``
measures steps per second.

Setup (fixed before any run):

* data: ``c = a * b^-1 mod 97`` for ``a`` in 0..96, ``b`` in 1..96 (9,312 pairs); a
  random 25% (2,328 pairs, drawn per seed) is the training set, the other 75% the
  validation set;
* model: a one-layer decoder-only transformer read at its last position, as in the
  grokking literature: tokens ``[a, b, "="]`` (vocabulary 98), learned token and
  position embeddings (d_model 128), one causal self-attention layer with 4 heads of
  32, a ReLU MLP 128 -> 512 -> 128, both with residual connections, no LayerNorm, an
  unembedding 128 -> 97 without bias; 222,592 parameters. Because the sequence has
  three tokens and only the last position is read, attention scores and values are
  evaluated from per-(token, position) tables: the same function and parameters as the
  full transformer at a fraction of the cost;
* initialisation: every matrix N(0, 1/fan_in), embeddings N(0, 1/d_model), biases 0,
  from a seeded ``torch.Generator``;
* training: minibatches of 512 drawn by reshuffling each epoch, cross-entropy, decoupled
  weight decay 1.0, betas (0.9, 0.98) for both optimizers, validation accuracy every
  ``EVAL_EVERY`` steps, a run stops at 99% or at the cap. Seeds are paired: split,
  initialisation and batch order are the same for every optimizer;
* SNRAdamW (:func:`configs`): rho 0.99, 100 warm-up steps, ungated decay, the batch size
  passed to every step (``alpha="finite"``: threshold 512 / (2,328 - 512) = 0.282).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hessian.training.optim import SNRAdamW  # noqa: E402

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "results" / "optim" / "division"
P = 97
FRAC = 0.25
BATCH = 512
EVAL_EVERY = 50
D, HEADS, D_MLP = 128, 4, 512


class TinyTransformer(nn.Module):
    """One-layer transformer on ``[a, b, =]``, logits at the last position (module docstring)."""

    def __init__(self, p: int = P, d: int = D, heads: int = HEADS, d_mlp: int = D_MLP,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p, self.d, self.heads = p, d, heads

        def mat(*shape: int, fan: int) -> nn.Parameter:
            w = torch.empty(*shape)
            w.normal_(0.0, 1.0 / math.sqrt(fan), generator=generator)
            return nn.Parameter(w)

        self.tok = mat(p + 1, d, fan=d)          # tokens 0..p-1 and "=" (index p)
        self.pos = mat(3, d, fan=d)
        self.wq, self.wk, self.wv = (mat(d, d, fan=d) for _ in range(3))
        self.wo = mat(d, d, fan=d)
        self.w_in = mat(d_mlp, d, fan=d)
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.w_out = mat(d, d_mlp, fan=d_mlp)
        self.b_out = nn.Parameter(torch.zeros(d))
        self.w_u = mat(p, d, fan=d)

    def forward(self, ab: torch.Tensor) -> torch.Tensor:
        p, d, nh = self.p, self.d, self.heads
        dh = d // nh
        xa = self.tok[:p] + self.pos[0]                       # (p, d): position 0 table
        xb = self.tok[:p] + self.pos[1]
        xe = self.tok[p] + self.pos[2]                        # (d,): the "=" token
        q = (xe @ self.wq.T).view(nh, dh)
        keys = [(x @ self.wk.T).view(-1, nh, dh) for x in (xa, xb, xe[None])]
        vals = [(x @ self.wv.T).view(-1, nh, dh) for x in (xa, xb, xe[None])]
        sa, sb, se = ((k * q).sum(-1) / math.sqrt(dh) for k in keys)  # (p|1, nh)
        s = torch.stack([sa[ab[:, 0]], sb[ab[:, 1]], se.expand(len(ab), nh)], 1)
        w = torch.softmax(s, dim=1)                           # (B, 3, nh)
        v = torch.stack([vals[0][ab[:, 0]], vals[1][ab[:, 1]],
                         vals[2].expand(len(ab), nh, dh)], 1)  # (B, 3, nh, dh)
        attn = (w[..., None] * v).sum(1).reshape(len(ab), d)
        h = xe + attn @ self.wo.T
        h = h + torch.relu(h @ self.w_in.T + self.b_in) @ self.w_out.T + self.b_out
        return h @ self.w_u.T


def division_data(seed: int, frac: float = FRAC, p: int = P):
    """Train/validation split of ``a * b^-1 mod p`` (``b != 0``), drawn per seed."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(1, p), indexing="ij")
    X = torch.stack([a.reshape(-1), b.reshape(-1)], 1)
    inv = torch.tensor([pow(int(v), -1, p) for v in range(1, p)])
    y = (X[:, 0] * inv[X[:, 1] - 1]) % p
    return split_pairs(X, y, frac, torch.Generator().manual_seed(30_000 + seed))


def split_pairs(X: torch.Tensor, y: torch.Tensor, frac: float, generator: torch.Generator):
    """Random train/validation split: the first ``round(frac * len(y))`` of a permutation."""
    perm = torch.randperm(len(y), generator=generator)
    n = int(round(frac * len(y)))
    tr, va = perm[:n], perm[n:]
    return X[tr], y[tr], X[va], y[va]


def epoch_batches(n: int, batch: int, generator: torch.Generator):
    """Minibatch indices drawn without replacement; a new permutation when fewer than
    ``batch`` examples are left in the epoch (the remainder is dropped)."""
    while True:
        order = torch.randperm(n, generator=generator)
        for pos in range(0, n - batch + 1, batch):
            yield order[pos:pos + batch]


def make_optimizer(cfg: dict, params: Any, n_train: int):
    if cfg["opt"] == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                 weight_decay=cfg["wd"])
    kw = dict(gate=cfg["gate"], softness=cfg["softness"], rho=0.99, warmup=100,
              momentum_correction=True, gate_weight_decay=False)
    if cfg["alpha"] == "finite":
        kw.update(alpha="finite", num_examples=n_train)
    else:
        kw.update(alpha=float(cfg["alpha"]))
    return SNRAdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]),
                    weight_decay=cfg["wd"], **kw)


def train(cfg: dict, seed: int, cap: int, batch: int = BATCH,
          eval_every: int = EVAL_EVERY) -> dict:
    """One run: validation curve, steps to 95% and 99% (None: not reached by ``cap``)."""
    Xtr, ytr, Xva, yva = division_data(seed)
    model = TinyTransformer(generator=torch.Generator().manual_seed(seed))
    opt = make_optimizer(cfg, model.parameters(), len(ytr))
    loss_fn = nn.CrossEntropyLoss()
    n = len(ytr)
    batches = epoch_batches(n, batch, torch.Generator().manual_seed(40_000 + seed))
    rec: dict = {"steps": [], "val_acc": [], "train_loss": [], "gate_frac": []}
    hit95 = hit99 = None
    t0 = time.perf_counter()
    for step in range(1, cap + 1):
        idx = next(batches)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xtr[idx]), ytr[idx])
        loss.backward()
        if isinstance(opt, SNRAdamW):
            opt.step(batch_size=len(idx))
        else:
            opt.step()
        if step % eval_every == 0 or step == cap:
            with torch.no_grad():
                va = float((model(Xva).argmax(1) == yva).float().mean())
            rec["steps"].append(step)
            rec["val_acc"].append(va)
            rec["train_loss"].append(loss.item())
            rec["gate_frac"].append(opt.gate_fraction()[0] if isinstance(opt, SNRAdamW)
                                    else 1.0)
            if hit95 is None and va >= 0.95:
                hit95 = step
            if va >= 0.99:
                hit99 = step
                break
            if not math.isfinite(rec["train_loss"][-1]):
                break
    rec.update(cfg=cfg, seed=seed, cap=cap, batch=batch, n_train=n, hit95=hit95,
               hit99=hit99, seconds=time.perf_counter() - t0, load=os.getloadavg()[0],
               steps_per_s=rec["steps"][-1] / (time.perf_counter() - t0))
    return rec


# ---------------------------------------------------------------------- the study
BETAS = [0.9, 0.98]
#: Learning rates and step caps: AdamW groks in about 600 steps at 1e-2 and about 5,000
#: at 3e-3 (seed-0 pilot, 50% validation accuracy at 4,000); 1e-3 (the literature's) is
#: beyond a CPU budget.
CAPS = {1e-2: 3000, 5e-3: 6000}
LRS = tuple(CAPS)


def configs(lr: float) -> dict[str, dict]:
    """The compared optimizers at learning rate ``lr`` (run names without the lr).

    ``soft_finite`` is Algorithm 1 (the soft gate, threshold b/(n-b)); ``soft_a1`` the same
    gate at the fresh-batch threshold alpha = 1; ``snr_a0`` the library's default (snr
    gate, alpha 0 with the momentum correction).
    """
    base = {"lr": lr, "betas": BETAS, "wd": 1.0}
    return {"adamw": {"opt": "adamw", **base},
            "soft_finite": {"opt": "snr", **base, "gate": "soft", "softness": 1.0,
                            "alpha": "finite"},
            "snr_a0": {"opt": "snr", **base, "gate": "snr", "softness": 1.0, "alpha": 0.0},
            "soft_a1": {"opt": "snr", **base, "gate": "soft", "softness": 1.0,
                        "alpha": 1.0}}


def tuning_configs(lr: float) -> dict[str, dict]:
    """Algorithm 1's softness tuned for ours: tau = 0.3 and 3 (1 is in :func:`configs`)."""
    base = configs(lr)["soft_finite"]
    return {f"soft_finite_t{t:g}": {**base, "softness": t} for t in (0.3, 3.0)}


def run_name(name: str, lr: float, seed: int) -> str:
    return f"{name}__lr{lr:g}__s{seed}"


def cached(name: str, cfg: dict, seed: int, cap: int, folder: Path = FOLDER) -> dict:
    """A run from the cache (same config, cap at least ``cap`` or reached 99%), else run it."""
    path = folder / f"{run_name(name, cfg['lr'], seed)}.json"
    if path.exists():
        rec = json.loads(path.read_text())
        if rec["cfg"] == cfg and (rec["cap"] >= cap or rec["hit99"]):
            return rec
    rec = train(cfg, seed, cap)
    rec["name"] = name
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return rec


def study(seeds: list[int], lrs=LRS, names: list[str] | None = None,
          cap: int | None = None) -> dict:
    """Every run of the study, paired by seed (cache first); ``{(lr, name): [records]}``."""
    out: dict = {}
    for seed in seeds:  # seed-major: a partial study still has paired seeds
        for lr in lrs:
            for name, cfg in {**configs(lr), **tuning_configs(lr)}.items():
                if (name not in names) if names is not None else name not in configs(lr):
                    continue
                r = cached(name, cfg, seed, cap or CAPS[lr])
                out.setdefault((lr, name), []).append(r)
                print(f"{name} lr {lr:g} seed {seed}: 95% at {r['hit95']}, 99% at "
                      f"{r['hit99']}, val {r['val_acc'][-1]:.3f}, gate "
                      f"{r['gate_frac'][-1]:.2f}, {r['steps_per_s']:.1f} steps/s "
                      f"(load {r['load']:.1f})", flush=True)
    return out


# ---------------------------------------------------------------------- the report
#: What the study measured (written from the table below once the runs were in).
FINDINGS = """\
What we measured (the table below; every number is from the cached runs, 3 paired seeds
unless the table says otherwise):

- **No speed-up in the paper's setting: the gate slowed grokking.** Algorithm 1 (soft
  gate, finite-data threshold b/(n-b) = 0.28) reached 95% validation accuracy later than
  AdamW at both learning rates: median paired ratio AdamW/SNRAdamW 0.39x at lr 1e-2
  (AdamW 750 steps; one of 3 gated runs never reached 95% in 3,000) and 0.53x at lr
  5e-3 (AdamW 2,250; 2 of 3 gated runs censored at 6,000, ending at 64-74%). Ratios of
  censored runs are upper bounds. The library's default gate (snr, alpha = 0) was
  closer but still slower, 0.79x and 0.88x. The paper reports 4.9x (5,950 against
  29,450 steps); no run of ours beat its paired AdamW run.
- **The finite-data threshold matters; alpha = 1 is fatal here.** With alpha = 1 (the
  fresh-batch threshold: noise multiplier 1 + rho = 1.05, against 0.28 + 0.05 = 0.33
  for b/(n-b)) the soft gate closed every coordinate after the warm-up (0% open) and the
  ungated weight decay pulled the network to chance (validation accuracy 0.02 at the
  cap) in all 4 runs (3 seeds at lr 1e-2, 1 at lr 5e-3). With b/(n-b) it trains, with
  4-8% of the coordinates open at the end. Softness (Algorithm 1 at lr 1e-2): 0.3 was
  better than 1 (0.60x, every run reached 99%), 3 behaved like alpha = 1 (nothing
  learned).
- **Where the gate hurts.** At lr 5e-3 the gated runs start to generalise *earlier*
  than AdamW (10% validation accuracy at steps 1,200 / 1,400 / 2,700 against 1,750 /
  1,850 / 2,800, paired), but where AdamW then goes from 10% to 99% in 250-750 steps,
  two of the three gated runs stall at 56-84%, with repeated drops, for more than 2,000
  steps (figure). With a few percent of the coordinates open the update is too sparse
  to complete the circuit, and the ungated decay keeps shrinking the closed
  coordinates.
- **Caveats.** Our learning rates are 5-10x the grokking literature's 1e-3 (AdamW here
  groks in 600-3,550 steps, not 29,450), because lr 1e-3 does not fit this CPU budget
  (AdamW at lr 3e-3 had reached only 50% after 4,000 steps in a seed-0 pilot); the model
  has one layer; rho (0.99) and the warm-up (100 steps) were not tuned; alpha = 1 at lr
  5e-3 has one seed (time). Tuning effort: AdamW 2 learning rates; SNRAdamW the
  same 2, plus softness 0.3 and 3 for Algorithm 1 at lr 1e-2."""

LABELS = {"adamw": "AdamW",
          "soft_finite": "SNRAdamW soft gate, alpha = b/(n-b) = 0.28 (Algorithm 1)",
          "snr_a0": "SNRAdamW snr gate, alpha = 0 (library default)",
          "soft_a1": "SNRAdamW soft gate, alpha = 1 (fresh-batch threshold)",
          "soft_finite_t0.3": "SNRAdamW soft gate, alpha = b/(n-b), softness 0.3",
          "soft_finite_t3": "SNRAdamW soft gate, alpha = b/(n-b), softness 3"}


def load_study(seeds: list[int], lrs=LRS) -> dict:
    """The cached runs, ``{(lr, name): [records in seed order]}``; only complete seeds."""
    out: dict = {}
    for lr in lrs:
        for name, cfg in {**configs(lr), **tuning_configs(lr)}.items():
            recs = []
            for seed in seeds:
                f = FOLDER / f"{run_name(name, lr, seed)}.json"
                r = json.loads(f.read_text()) if f.exists() else None
                if r is None or r["cfg"] != cfg:
                    break
                recs.append(r)
            out[(lr, name)] = recs
    return out


def _steps(r: dict, level: int) -> float:
    v = r["hit95"] if level == 95 else r["hit99"]
    return float(v) if v is not None else math.inf


def _fmt(vals: list[float], cap: int) -> str:
    if not vals:
        return "-"
    med = float(np.median(vals))
    got = [v for v in vals if math.isfinite(v)]
    med_s = f"{med:.0f}" if math.isfinite(med) else f"> {cap}"
    top = f"{max(vals):.0f}" if math.isfinite(max(vals)) else f"> {cap}"
    rng = f" [{min(got):.0f} to {top}]" if got else ""
    miss = len(vals) - len(got)
    return med_s + rng + (f", {miss}/{len(vals)} > cap" if miss else "")


def _ratio(base: list[dict], recs: list[dict], level: int) -> str:
    """Paired AdamW/optimizer step ratios at ``level``: median [range]; censored as bounds."""
    rs = []
    for a, b in zip(base, recs, strict=False):
        sa, sb = _steps(a, level), min(_steps(b, level), float(b["cap"]) + 1)
        rs.append(sa / sb if math.isfinite(sa) else math.nan)
    rs = [r for r in rs if math.isfinite(r)]
    if not rs:
        return "n/a"
    cens = sum(1 for b in recs[:len(base)] if not math.isfinite(_steps(b, level)))
    if cens == len(rs):
        return f"< {max(rs):.2f}x (every run censored)"
    text = f"{np.median(rs):.2f}x [{min(rs):.2f}-{max(rs):.2f}]"
    return text + (f" ({cens} censored, their ratios upper bounds)" if cens else "")


def table(res: dict) -> list[str]:
    lines = ["| lr | optimizer | seeds | steps to 95% (median [range]) | steps to 99% | "
             "paired ratio AdamW/opt. at 95% | at 99% | open gates at the end | "
             "val. acc. at the end |", "|---|---|---|---|---|---|---|---|---|"]
    for lr in LRS:
        base = res[(lr, "adamw")]
        for name in {**configs(lr), **tuning_configs(lr)}:
            recs = res[(lr, name)]
            if not recs:
                continue
            n = min(len(base), len(recs))
            r95 = _ratio(base[:n], recs[:n], 95) if name != "adamw" else ""
            r99 = _ratio(base[:n], recs[:n], 99) if name != "adamw" else ""
            gates = (f"{np.median([r['gate_frac'][-1] for r in recs]):.0%}"
                     if name != "adamw" else "")
            acc = f"{np.median([r['val_acc'][-1] for r in recs]):.3f}"
            lines.append(f"| {lr:g} | {LABELS[name]} | {len(recs)} | "
                         f"{_fmt([_steps(r, 95) for r in recs], CAPS[lr])} | "
                         f"{_fmt([_steps(r, 99) for r in recs], CAPS[lr])} | {r95} | {r99} | "
                         f"{gates} | {acc} |")
    return lines


def plot(res: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spectra.plot import COLORS, style_axes

    colors = dict(zip(configs(LRS[0]), [COLORS["reference"], COLORS["estimate"],
                                        COLORS["nodes"], COLORS["band"]], strict=True))
    fig, axes = plt.subplots(1, len(LRS), figsize=(11.0, 4.0), dpi=150, layout="constrained")
    for ax, lr in zip(np.atleast_1d(axes), LRS, strict=True):
        grid = np.arange(0, CAPS[lr] + 1, EVAL_EVERY)
        counts = sorted({len(res[(lr, name)]) for name in configs(lr)} - {0})
        for name in configs(lr):
            recs = res[(lr, name)]
            if not recs:
                continue
            Y = []
            for r in recs:
                st, va = np.array(r["steps"]), np.array(r["val_acc"])
                y = np.interp(grid, st, va, left=0.0)
                y[grid > st[-1]] = va[-1]  # a run that stopped at 99% stays there
                Y.append(y)
            Y = np.array(Y)
            ax.fill_between(grid, Y.min(0), Y.max(0), color=colors[name], alpha=0.18,
                            linewidth=0)
            ax.plot(grid, np.median(Y, 0), color=colors[name], label=LABELS[name], lw=1.4)
        ax.axhline(0.95, color="0.6", lw=0.6, ls=":")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, CAPS[lr])
        seeds = "-".join(str(c) for c in (counts[0], counts[-1]) if counts) if counts else "0"
        seeds = seeds if not counts or counts[0] != counts[-1] else str(counts[0])
        ax.set_title(f"a / b mod 97, 25% train, batch {BATCH}, lr {lr:g}: median and range "
                     f"of {seeds} seeds", fontsize=8.5)
        style_axes(ax, xlabel="step", ylabel="validation accuracy")
    np.atleast_1d(axes)[0].legend(frameon=False, fontsize=6.5, loc="center right")
    path = out / "optim_division.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def section(out: Path, seeds: list[int] = (0, 1, 2)) -> list[str]:
    """The Markdown section of ``docs/benchmarks_optim.md`` (from the cache only)."""
    res = load_study(list(seeds))
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)
    fig = plot(res, img)
    sp = FOLDER / "speed.json"
    speed_line = ""
    if sp.exists():
        rec = json.loads(sp.read_text())
        speed_line = (f"Measured first (`python benchmarks/optim_division.py speed`): "
                      f"{rec['steps_per_s']:.1f} training steps/s at batch {rec['batch']} on "
                      f"one thread, load average {rec['load']:.1f} on 2 shared cores. ")
    runs = [r for recs in res.values() for r in recs]
    if runs:
        sps = [r["steps_per_s"] for r in runs]
        loads = [r["load"] for r in runs]
        speed_line += (f"The {len(runs)} runs (`python benchmarks/optim_division.py study`, "
                       f"two processes under `nice -n 10`, the machine shared with other "
                       f"jobs) logged {min(sps):.1f}-{max(sps):.1f} steps/s at load "
                       f"{min(loads):.1f}-{max(loads):.1f}.")
    lines = [f"Setup (module docstring of `benchmarks/optim_division.py`): c = a * b^-1 mod 97 "
             f"(9,312 pairs), 25% train (2,328), a 1-layer transformer (d_model {D}, {HEADS} "
             f"heads, MLP {D_MLP}, no LayerNorm, 222,592 parameters), minibatches of {BATCH} "
             "(threshold b/(n-b) = 0.282), weight decay 1, betas (0.9, 0.98), the same "
             f"learning rates for every optimizer, paired seeds, caps "
             f"{', '.join(f'{c:,} steps at lr {lr:g}' for lr, c in CAPS.items())}; a "
             "censored run counts as '> cap'. " + speed_line, ""]
    lines += table(res)
    lines += ["", f"![division]({fig.relative_to(out)})", ""]
    return lines


def epoch_noise(n: int = 2328, b: int = BATCH, d: int = 2000, steps: int = 1500,
                seed: int = 0) -> dict:
    """What s_hat and m_hat^2 estimate when batches are drawn without replacement.

    A fixed dataset of ``n`` centred N(0, 1) per-example gradients (full-data mean 0),
    batches of ``b`` reshuffled each epoch as in :func:`train`, SNRAdamW's recursions
    (beta1 0.9, rho 0.99) in float64; returns the means over steps 300.. of
    ``s_hat / Var(batch mean)`` and ``m_hat^2 / Var(batch mean)`` with
    ``Var(batch mean) = S^2 (n - b) / (b (n - 1))``. Fresh i.i.d. batches would give
    1 + rho(beta1) = 1.053 and rho(beta1) = 0.053.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X -= X.mean(0)
    var = (X**2).mean(0) * (n - b) / (b * (n - 1))
    b1, rho = 0.9, 0.99
    m, s = np.zeros(d), np.zeros(d)
    order, pos = rng.permutation(n), 0
    S, M = [], []
    for t in range(1, steps + 1):
        if pos + b > n:
            order, pos = rng.permutation(n), 0
        g = X[order[pos:pos + b]].mean(0)
        pos += b
        if t > 1:
            s = rho * s + (1 - rho) * (g - m / (1 - b1 ** (t - 1))) ** 2
        m = b1 * m + (1 - b1) * g
        if t > 300:
            S.append(float((s / (1 - rho ** (t - 1)) / var).mean()))
            M.append(float(((m / (1 - b1**t)) ** 2 / var).mean()))
    return {"n": n, "b": b, "s_hat_over_var": float(np.mean(S)),
            "m_hat2_over_var": float(np.mean(M))}


def speed(steps: int = 100) -> float:
    """Training steps per second of the transformer at batch 512 (AdamW, one thread)."""
    Xtr, ytr, _, _ = division_data(0)
    model = TinyTransformer(generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0)
    idx = torch.arange(BATCH)
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
        opt.step()
    return steps / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("study", "speed", "report", "noise"))
    ap.add_argument("--cap", type=int, default=None, help="default: CAPS per lr")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lrs", default=",".join(f"{lr:g}" for lr in LRS))
    ap.add_argument("--names", default=None, help="comma-separated subset of configs")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.what == "speed":
        rec = {"steps_per_s": speed(), "load": os.getloadavg()[0], "batch": BATCH,
               "threads": 1}
        FOLDER.mkdir(parents=True, exist_ok=True)
        (FOLDER / "speed.json").write_text(json.dumps(rec))
        print(f"{rec['steps_per_s']:.1f} steps/s at batch {BATCH} (load {rec['load']:.1f})")
        return
    if a.what == "noise":
        rows = [epoch_noise(n, b) for n, b in ((2328, 512), (2000, 200), (20000, 200))]
        (FOLDER / "epoch_noise.json").write_text(json.dumps(rows))
        for r in rows:
            print(r)
        return
    if a.what == "report":
        print("\n".join(section(HERE.parent / "docs", [int(x) for x in a.seeds.split(",")])))
        return
    names = a.names.split(",") if a.names else None
    study([int(s) for s in a.seeds.split(",")], tuple(float(x) for x in a.lrs.split(",")),
          names, a.cap)


if __name__ == "__main__":
    main()
