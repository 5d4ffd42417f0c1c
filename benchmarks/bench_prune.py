"""Pruning: KernelPruner (trajectory-Gramian scores) vs global magnitude pruning.

Run ``python benchmarks/bench_prune.py [--quick] [--threads N]``; prints Markdown.

Setup: sklearn digits (1,797 x 64, pixels / 16), a fixed split of 1,200 training and
597 test images; an MLP 64-128-64-10 with tanh (17,226 parameters) trained with SGD
(lr 0.05, momentum 0.9, batch 64, float32). During training a
:class:`hessian.TrajectoryGramian` is updated at every step from the training forward
pass (``outputs=``, one output-space Rademacher probe, weight = lr). After training,
each method prunes a copy of the model one-shot to the same share of the Linear
weights (biases are kept): global L1 magnitude (``torch.nn.utils.prune
.global_unstructured``) and ``hessian.KernelPruner`` with ``score="gramian"``
(:math:`W_{kk}`) and ``score="obd"`` (:math:`\\frac12 w_k^2 W_{kk} / \\sum\\eta`). Test
accuracy is measured right after pruning and after the same short fine-tune for every
method (SGD as in training, masks kept), and the share of the Gramian trace on the
pruned coordinates. ``/layer`` variants give every layer the same sparsity
(``l1_unstructured`` per layer; ``KernelPruner(scope="layer")``). Seeds vary the
initialisation and the batch order; the tables give the mean and, in brackets, the
min-max over seeds.

Timings on a shared 2-core machine carry +-30% noise.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as tprune

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hessian  # noqa: E402

SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95)
METHODS = ("magnitude", "magnitude/layer", "gramian", "gramian/layer", "obd", "obd/layer")
LR, MOMENTUM, BATCH = 0.05, 0.9, 64


def digits_split(seed: int = 0):
    try:
        from sklearn.datasets import load_digits

        d = load_digits()
        X, y, src = d.data / 16.0, d.target, "sklearn digits"
    except ImportError:  # a synthetic stand-in of the same shape
        g = np.random.default_rng(0)
        X, y, src = g.random((1797, 64)), g.integers(0, 10, 1797), "synthetic (no sklearn)"
    perm = np.random.default_rng(seed).permutation(len(X))
    X = torch.tensor(X[perm], dtype=torch.float32)
    y = torch.tensor(y[perm], dtype=torch.long)
    return (X[:1200], y[:1200]), (X[1200:], y[1200:]), src


def mlp(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(),
                          nn.Linear(64, 10))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                bound = 1.0 / np.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return model


def sgd_steps(model, train, steps, g, gramian=None):
    X, y = train
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    done = 0
    while done < steps:
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X) - BATCH + 1, BATCH):
            idx = perm[i:i + BATCH]
            out = model(X[idx])
            if gramian is not None:
                gramian.update(X[idx], LR, outputs=out)
            opt.zero_grad()
            loss_fn(out, y[idx]).backward()
            opt.step()
            done += 1
            if done == steps:
                return


@torch.no_grad()
def accuracy(model, data) -> float:
    X, y = data
    return float((model(X).argmax(1) == y).double().mean())


def linear_weights(model):
    return [(m, "weight") for m in model if isinstance(m, nn.Linear)]


def prune_copy(model, G, method: str, sparsity: float):
    m = copy.deepcopy(model)
    score, _, scope = method.partition("/")
    if method == "magnitude":
        tprune.global_unstructured(linear_weights(m), pruning_method=tprune.L1Unstructured,
                                   amount=sparsity)
    elif method == "magnitude/layer":
        for mod, name in linear_weights(m):
            tprune.l1_unstructured(mod, name, amount=sparsity)
    else:
        G2 = hessian.TrajectoryGramian(m, generator=0)
        G2.load_state_dict(G.state_dict())  # the same Gramian, over the copy's parameters
        hessian.KernelPruner(m, G2, score=score, scope=scope or "global").prune_to(sparsity)
    return m


def mass_removed(m, G) -> float:
    diag = G.diagonal()
    pruned = 0.0
    for i, layer in enumerate(m):
        if isinstance(layer, nn.Linear):
            pruned += float(diag[f"{i}.weight"][layer.weight_mask == 0].sum())
    return pruned / G.trace()


def one_seed(seed, train, test, epochs, finetune):
    model = mlp(seed)
    steps = epochs * (len(train[0]) // BATCH)
    G = hessian.TrajectoryGramian(model, num_probes=1, generator=seed)
    sgd_steps(model, train, steps, torch.Generator().manual_seed(1000 + seed), gramian=G)
    res = {"dense": accuracy(model, test), "steps": steps,
           "zero_diag": int((G.diagonal(flat=True) == 0).sum())}
    for s in SPARSITIES:
        for meth in METHODS:
            m = prune_copy(model, G, meth, s)
            one = accuracy(m, test)
            mass = mass_removed(m, G)
            sgd_steps(m, train, finetune, torch.Generator().manual_seed(7 + seed))
            res[(s, meth)] = (one, accuracy(m, test), mass)
    return res


def overhead(train, steps: int, repeats: int = 3) -> tuple[float, float]:
    """Seconds of plain training and of training with the Gramian update (min of repeats)."""
    sgd_steps(mlp(0), train, 5, torch.Generator().manual_seed(0),
              gramian=hessian.TrajectoryGramian(mlp(0), generator=0))  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for with_g in (False, True):
            model = mlp(0)
            G = hessian.TrajectoryGramian(model, generator=0) if with_g else None
            t0 = time.perf_counter()
            sgd_steps(model, train, steps, torch.Generator().manual_seed(0), gramian=G)
            times[with_g].append(time.perf_counter() - t0)
    return min(times[False]), min(times[True])


def _cell(vals, pct=True) -> str:
    f = 100.0 if pct else 1.0
    v = np.asarray(vals) * f
    if len(v) == 1:
        return f"{v[0]:.1f}"
    return f"{v.mean():.1f} [{v.min():.1f}-{v.max():.1f}]"


def _table(runs, methods, k: int) -> list[str]:
    lines = ["| sparsity | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for s in SPARSITIES:
        lines.append(f"| {s:.0%} | "
                     + " | ".join(_cell([r[(s, m)][k] for r in runs]) for m in methods) + " |")
    return lines


def run(quick: bool = False, threads: int | None = 1) -> str:
    if threads is not None:
        torch.set_num_threads(threads)
    seeds = [0] if quick else [0, 1, 2]
    epochs, finetune = (10, 60) if quick else (30, 200)
    train, test, src = digits_split()
    runs = [one_seed(s, train, test, epochs, finetune) for s in seeds]
    nparam = sum(p.numel() for p in mlp(0).parameters())
    steps = runs[0]["steps"]
    t_plain, t_gram = overhead(train, steps)
    out = [
        "# Pruning: KernelPruner vs magnitude pruning", "",
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); data: {src}, "
        f"1,200 train / 597 test; MLP 64-128-64-10 tanh ({nparam:,} parameters), SGD "
        f"lr {LR} momentum {MOMENTUM} batch {BATCH}, {steps} steps; {len(seeds)} seed(s) "
        "(mean [min-max]). One-shot pruning of the Linear weights (biases kept) at equal "
        "sparsity; `/layer`: the same sparsity in every layer, otherwise one global "
        "ranking. magnitude: `torch.nn.utils.prune` L1 (global_unstructured / "
        "l1_unstructured); gramian, obd: `hessian.KernelPruner(score=...)`.", "",
        f"Dense test accuracy: {_cell([r['dense'] for r in runs])}%. Coordinates with an "
        "exactly zero Gramian diagonal (first-layer weights reading always-blank pixels): "
        f"{_cell([r['zero_diag'] for r in runs], pct=False)}. Training {steps} steps took "
        f"{t_plain:.2f} s plain and {t_gram:.2f} s with the Gramian update at every step "
        f"(one probe; {t_gram / t_plain:.2f}x; min of 3).", "",
        "Test accuracy (%) right after pruning:", "",
    ]
    out += _table(runs, METHODS, 0)
    out += ["", f"Test accuracy (%) after {finetune} fine-tuning steps (the same for every "
            "method; masks kept):", ""]
    out += _table(runs, METHODS, 1)
    out += ["", "Share of the Gramian trace on the pruned coordinates (%):", ""]
    out += _table(runs, METHODS, 2)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 1
    text = run(quick="--quick" in argv, threads=n)
    print(text)
    return text


if __name__ == "__main__":
    main()
