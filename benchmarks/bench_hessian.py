"""Curvature of PyTorch models: impalpable's hessian vs PyHessian, curvlinops, eigenthings.

Run ``python benchmarks/bench_hessian.py [--quick] [--threads N]``; prints Markdown.

Setup (ANCHORS.md): MLP 64-256-256-10 tanh (85,002 parameters) on sklearn digits
(1,797 x 64, pixels / 16), full batch, float32, cross-entropy; a small CNN on the same
8 x 8 images; a 64-32-16-10 tanh MLP (2,778 parameters) for the trace and density
accuracy runs, where the exact Hessian is formed (float64) for reference. Parameters
are drawn from a local ``torch.Generator`` (PyTorch's default initialisation law), then
trained for 20 full-batch Adam steps (lr 1e-2): at initialisation the Hessian is flat and
indefinite (trace close to its Frobenius norm, where every trace estimator has ~10%
error); after these steps the 2,778-parameter model has trace ~28 and spectrum width
~3, the regime of ANCHORS.md (27.7 and 2.9).

Anchors run unmodified from PyPI. The only accommodation: PyHessian 0.1 calls
``torch.eig``, removed from torch; during its ``density`` call ``torch.eig`` is bound to
a shim built on ``torch.linalg.eigh`` (its matrix is symmetric tridiagonal) and unbound
afterwards. PyHessian and curvlinops draw probes from the global RNGs: their runs are
seeded inside ``torch.random.fork_rng`` / a saved numpy state, which are restored after.
Product counts of the anchors come from wrappers around their product functions.

Timings are medians of repeats on a shared 2-core machine: expect +-30% noise between
runs; compare within a table. Peak memory is the growth of the resident set during a
call (Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``), so it
includes allocator caching; "n/a" off Linux.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hessian_common as C  # noqa: E402
from hessian_common import (  # noqa: E402
    CE,
    Counted,
    anchors_available,
    interleaved,
    nparams,
    peak_mb,
    seeded,
    torch_eig_shim,
)

import hessian  # noqa: E402
import spectra  # noqa: E402
from spectra.testing import wasserstein1  # noqa: E402


# ---------------------------------------------------------------------- data, models
def digits(dtype=torch.float32):
    try:
        from sklearn.datasets import load_digits

        d = load_digits()
        X, y, src = d.data / 16.0, d.target, "sklearn digits"
    except ImportError:  # a synthetic stand-in of the same shape
        g = np.random.default_rng(0)
        X, y, src = g.random((1797, 64)), g.integers(0, 10, 1797), "synthetic (no sklearn)"
    return torch.tensor(X, dtype=dtype), torch.tensor(y, dtype=torch.long), src


def _init(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                bound = 1.0 / np.sqrt(m.weight[0].numel())
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return model


def mlp(widths=(64, 256, 256, 10), seed=0) -> nn.Module:
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return _init(nn.Sequential(*layers), seed)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 64, 10)

    def forward(self, x):
        x = torch.tanh(self.c1(x.reshape(-1, 1, 8, 8)))
        return self.fc(torch.tanh(self.c2(x)).flatten(1))


def trained(model: nn.Module, X, y, steps: int = 20, lr: float = 1e-2) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        CE(model(X), y).backward()
        opt.step()
    C.clear_grads(model)
    return model


def pyhessian_op(model, X, y):
    import pyhessian

    C.clear_grads(model)
    return pyhessian.hessian(model, CE, data=(X, y), cuda=C.DEVICE.type == "cuda")


def curvlinops_op(model, X, y, check=True):
    from curvlinops import HessianLinearOperator

    params = [p for p in model.parameters() if p.requires_grad]
    return HessianLinearOperator(model, CE, params, [(X, y)], check_deterministic=check)


def eigenthings_op(model, X, y):
    from hessian_eigenthings import HessianOperator, supervised_loss

    return HessianOperator(model, [(X, y)], supervised_loss(CE))


# ---------------------------------------------------------------------- A: products
def product_table(model, X, y, quick: bool) -> list[str]:
    P = nparams(model)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(0)
    rounds, inner = (2 if quick else 5), 3  # turns; timed calls per turn
    counts = (1, 10) if quick else (1, 10, 100)

    def grad():
        torch.autograd.grad(CE(model(X), y), params)

    cases = [("gradient (forward + backward)", 1, grad)]  # (name, probes, callable)
    keep = []  # operators alive until every case is timed
    variants = [("autograd", "loop", "impalpable `autograd`, graph reused, loop"),
                ("autograd", "vmap", "impalpable `autograd`, graph reused, vmap"),
                ("func", "vmap", "impalpable `func` (jvp of grad), vmap")]
    for mode, batching, name in variants:
        H = hessian.HessianOperator(model, CE, (X, y), mode=mode, batching=batching)
        keep.append(H)
        for p in counts:
            if p == 1 and batching == "vmap" and mode == "autograd":
                continue  # one probe: the same call as the loop
            V = torch.randn(P, p, generator=g).to(C.DEVICE)
            cases.append((name if p > 1 else name.replace(", loop", "").replace(", vmap", ""),
                          p, lambda H=H, V=V: H.matmat(V)))
    av = anchors_available()
    if not isinstance(av["PyHessian"], Exception):
        from pyhessian.utils import hessian_vector_product

        ph = pyhessian_op(model, X, y)
        keep.append(ph)
        v = [torch.randn(p.shape, generator=g).to(C.DEVICE) for p in ph.params]
        cases.append(("PyHessian (graph reused)", 1,
                      lambda: hessian_vector_product(ph.gradsH, ph.params, v)))
    if not isinstance(av["hessian-eigenthings"], Exception):
        he = eigenthings_op(model, X, y)
        v1 = torch.randn(P, generator=g).to(C.DEVICE)
        cases.append(("hessian-eigenthings autograd", 1, lambda: he.matvec(v1)))
    if not isinstance(av["curvlinops"], Exception):
        cl = curvlinops_op(model, X, y)
        for p in counts:
            V = torch.randn(P, p, generator=g).to(C.DEVICE)
            cases.append(("curvlinops", p, lambda V=V: cl @ V))
    times: dict[int, float] = {}
    for big in (False, True):  # a batch of 100 is a loop of its own: one call per turn
        idx = [i for i, c in enumerate(cases) if (c[1] >= 100) == big]
        for i, t in zip(idx, interleaved([cases[i][2] for i in idx], 3 if big else rounds,
                                         0 if big else inner), strict=True):
            times[i] = t
    tg = times[0]
    rows = [f"| {name} | {p} | {times[i] / p * 1e3:.1f} | {times[i] / p / tg:.2f} | "
            f"{peak_mb(fn)} |" for i, (name, p, fn) in enumerate(cases)]
    del keep
    C.clear_grads(model)
    head = [f"Median over {rounds} rounds in a shuffled order; a turn is one untimed call "
            f"then {inner} timed ones (calls of 100 probes: 3 rounds of one timed call). "
            "*x gradient*: per-probe time over the gradient's.", "",
            "| path | probes per call | ms per probe | x gradient | peak MB |",
            "|---|---|---|---|---|"]
    return head + rows


# ---------------------------------------------------------------------- B: top eigenvalue
def eig_table(model, X, y, quick: bool) -> tuple[list[str], float]:
    ref_op = hessian.HessianOperator(model, CE, (X, y), dtype=torch.float64)
    ref = spectra.eigsh(ref_op, k=2, tol=1e-10, rng=0)
    lam1, lam2 = ref.eigenvalues[:2]
    del ref_op
    rows = []
    targets = (1e-3,) if quick else (1e-3, 1e-6)
    P = nparams(model)
    av = anchors_available()

    def add(name, target, fn):
        C.sync()
        t0 = time.perf_counter()
        lam, n = fn()
        C.sync()
        t = time.perf_counter() - t0
        err = abs(lam - lam1) / abs(lam1)
        ok = "yes" if err <= target else "**no**"
        rows.append(f"| {name} | {target:g} | {n} | {t:.2f} | {err:.1e} | {ok} |")

    H = hessian.HessianOperator(model, CE, (X, y))
    for target in targets:
        def ours(target=target):
            before = H.num_matvecs
            r = spectra.eigsh(H, k=1, tol=target, rng=0)
            return float(r.eigenvalues[0]), H.num_matvecs - before
        add("impalpable eigsh (thick-restart Lanczos)", target, ours)
    if not isinstance(av["PyHessian"], Exception):
        import pyhessian  # noqa: F401

        phm = sys.modules["pyhessian.hessian"]

        for target in targets:
            def ph_run(target=target):
                ph = pyhessian_op(model, X, y)
                counted = Counted(phm.hessian_vector_product)
                phm.hessian_vector_product = counted
                try:
                    with seeded(0):
                        lam, _ = ph.eigenvalues(maxIter=1000, tol=target)
                finally:
                    phm.hessian_vector_product = counted.fn
                    C.clear_grads(model)
                return float(lam[0]), counted.n
            add("PyHessian power iteration", target, ph_run)
    if not isinstance(av["hessian-eigenthings"], Exception):
        import hessian_eigenthings as he

        for target in targets:
            def he_power(target=target):
                op = eigenthings_op(model, X, y)
                op.matvec = Counted(op.matvec)
                lam, *_ = he.power_iteration_one(op, max_iter=2000, tol=target, seed=0)
                return float(lam), op.matvec.n
            add("hessian-eigenthings power iteration", target, he_power)

            def he_lanczos(target=target):
                op = eigenthings_op(model, X, y)
                op.matvec = Counted(op.matvec)
                r = he.lanczos(op, k=1, tol=target, which="LA", seed=0)
                return float(r.eigenvalues[0]), op.matvec.n
            add("hessian-eigenthings lanczos(k=1) defaults", target, he_lanczos)
    if not isinstance(av["curvlinops"], Exception):
        from scipy.sparse.linalg import eigsh

        for target in targets:
            def cl_run(target=target):
                op = curvlinops_op(model, X, y, check=False).to_scipy()
                A = Counted(op.matvec)
                from scipy.sparse.linalg import LinearOperator

                L = LinearOperator(op.shape, matvec=A, dtype=op.dtype)
                v0 = np.random.default_rng(0).standard_normal(P).astype(np.float32)
                lam = eigsh(L, k=1, which="LA", tol=target, v0=v0, return_eigenvectors=False)
                return float(lam[0]), A.n
            add("curvlinops + scipy eigsh", target, cl_run)
    head = [f"lambda1 = {lam1:.6f} (float64 reference), lambda2 / lambda1 = {lam2 / lam1:.3f}",
            "",
            "| method | target | products | seconds | relative error | met |",
            "|---|---|---|---|---|---|"]
    return head + rows, lam1


# ---------------------------------------------------------------------- C, D: trace, density
def small_case(X, y):
    model = trained(mlp((64, 32, 16, 10), seed=1).to(C.DEVICE), X, y)
    H64 = hessian.HessianOperator(model, CE, (X, y), dtype=torch.float64)
    n = H64.shape[0]
    eye = torch.eye(n, dtype=torch.float64, device=C.DEVICE)
    cols = [H64.matmat(eye[:, i:i + 400]) for i in range(0, n, 400)]
    Hd = torch.cat(cols, 1).cpu().numpy()
    Hd = 0.5 * (Hd + Hd.T)
    return model, Hd


def deflation_floor(lam: np.ndarray, budget: int) -> tuple[int, float]:
    """Best ``k`` and expected relative error of "exact top-k + sphere Hutchinson".

    With the ``k`` eigenvalues of largest modulus known exactly and ``m = budget - k``
    sphere probes on the ``d = n - k`` dimensional complement (eigenvalues ``mu``), the
    estimate's variance is ``2 d / (d + 2) * |mu - mean(mu)|^2 / m``; the expected absolute
    error of a normal estimate is ``sqrt(2 / pi)`` times its standard deviation.
    """
    order = np.argsort(-np.abs(lam))
    best = (0, np.inf)
    for k in range(budget - 1):
        mu = lam[order[k:]]
        d = mu.size
        sd = np.sqrt(2 * d / (d + 2) * np.sum((mu - mu.mean()) ** 2) / (budget - k))
        err = np.sqrt(2 / np.pi) * sd / abs(lam.sum())
        best = min(best, (k, err), key=lambda t: t[1])
    return best


def trace_table(model, X, y, Hd, quick: bool) -> list[str]:
    exact = float(np.trace(Hd))
    seeds = range(5 if quick else 20)
    H = hessian.HessianOperator(model, CE, (X, y))
    rows = []

    def add(name, fn):
        errs, times = [], []
        for s in seeds:
            C.sync()
            t0 = time.perf_counter()
            val = fn(s)
            C.sync()
            times.append(time.perf_counter() - t0)
            errs.append(abs(val - exact) / abs(exact))
        rows.append(f"| {name} | {100 * np.mean(errs):.2f}% | {100 * np.max(errs):.2f}% | "
                    f"{np.mean(times):.3f} |")

    for method in ("xtrace", "hutchpp", "hutchinson"):
        add(f"impalpable {method}, 100 products",
            lambda s, m=method: float(spectra.trace(H, 100, method=m, rng=s).value))
    av = anchors_available()
    if not isinstance(av["PyHessian"], Exception):
        def ph(s):
            p = pyhessian_op(model, X, y)
            with seeded(s):
                v = float(np.mean(p.trace(maxIter=100)))
            C.clear_grads(model)
            return v
        add("PyHessian Hutchinson (its default stopping rule)", ph)
    if not isinstance(av["curvlinops"], Exception):
        from curvlinops import xtrace

        cl = curvlinops_op(model, X, y)

        def clx(s):
            with seeded(s):
                return float(xtrace(cl, 100))
        add("curvlinops xtrace, 100 products", clx)
    if not isinstance(av["hessian-eigenthings"], Exception):
        import hessian_eigenthings as he

        op = eigenthings_op(model, X, y)
        add("hessian-eigenthings hutch++, 99 products",
            lambda s: float(he.trace(op, num_matvecs=99, seed=s).estimate))
    k, floor = deflation_floor(np.linalg.eigvalsh(Hd), 100)
    rows.append(f"| *bound*: exact top-{k} eigenvectors + {100 - k} sphere probes on the rest "
                f"(expected, from the eigenvalues) | {100 * floor:.2f}% | | |")
    head = [f"2,778-parameter MLP (64-32-16-10 tanh), exact trace {exact:.3f}; "
            f"{len(seeds)} seeds. The last row is no estimator: it is the expected error "
            "of the best split between an exactly known dominant subspace and Hutchinson "
            "on its complement, what Hutch++/XTrace-type methods approach as their "
            "sketch becomes perfect.", "",
            "| method | mean rel. error | max rel. error | seconds per estimate |",
            "|---|---|---|---|"]
    return head + rows


def _curve_w1(x, rho, lam):
    x, rho = np.asarray(x, float), np.clip(np.asarray(rho, float), 0, None)
    w = rho * np.gradient(x)
    return wasserstein1(x, lam, weights=w / w.sum())


def density_table(model, X, y, Hd, quick: bool) -> list[str]:
    lam = np.linalg.eigvalsh(Hd)
    probes, steps = (3, 80) if quick else (10, 80)
    reps = 1 if quick else 3
    rows = []
    H = hessian.HessianOperator(model, CE, (X, y))

    def add(name, fn):
        box, ts, mem = {}, [], ""

        def call():
            box["v"] = fn()
        for r in range(reps):  # seeded: every run gives the same W1
            C.sync()
            t0 = time.perf_counter()
            if r == 0:
                mem = peak_mb(call)
            else:
                call()
            C.sync()
            ts.append(time.perf_counter() - t0)
        w1, note = box["v"]
        rows.append(f"| {name} | {np.median(ts):.2f} | {w1:.1e} | {note} | {mem} |")

    def ours(p=probes, deflate=True):
        d = spectra.density(H, num_probes=p, num_steps=steps, deflate=deflate, rng=0)
        return wasserstein1(d, lam), f"raw nodes/weights, {d.num_matvecs} products"
    add("impalpable SLQ, pilot-deflated (default)", ours)
    add("impalpable SLQ, no deflation", lambda: ours(deflate=False))
    for few in sorted({max(2, (4 * probes) // 10), max(2, (3 * probes) // 10)}):
        add(f"impalpable SLQ, pilot-deflated, {few} probes", lambda few=few: ours(p=few))
    av = anchors_available()
    if not isinstance(av["PyHessian"], Exception):
        def ph():
            p = pyhessian_op(model, X, y)
            with seeded(0), torch_eig_shim():
                nodes, weights = p.density(iter=steps, n_v=probes)
            C.clear_grads(model)
            nodes, weights = np.ravel(nodes), np.ravel(weights) / probes
            return wasserstein1(nodes, lam, weights=weights), "raw (torch.eig shimmed)"
        add("PyHessian density", ph)
    if not isinstance(av["hessian-eigenthings"], Exception):
        import hessian_eigenthings as he

        def het():
            op = eigenthings_op(model, X, y)
            r = he.spectral_density(op, num_runs=probes, lanczos_steps=steps, seed=0)
            nodes = r.raw_eigenvalues.double().cpu().numpy().ravel()
            w = r.raw_weights.double().cpu().numpy().ravel()
            keep = np.isfinite(nodes)
            return wasserstein1(nodes[keep], lam, weights=w[keep]), "raw"
        add("hessian-eigenthings spectral_density", het)
    if not isinstance(av["curvlinops"], Exception):
        from curvlinops import lanczos_approximate_spectrum

        def clv():
            cl = curvlinops_op(model, X, y)
            with seeded(0):
                grid, dens = lanczos_approximate_spectrum(cl, steps, num_repeats=probes)
            return _curve_w1(np.asarray(grid.cpu()), np.asarray(dens.cpu()), lam), \
                "smoothed curve only"
        add("curvlinops lanczos_approximate_spectrum", clv)
    head = [f"{probes} probes x {steps} Lanczos steps on the 2,778-parameter MLP "
            f"(spectrum width {lam[-1] - lam[0]:.3f})", "",
            f"Seconds: median of {reps} runs.", "",
            "| method | seconds | W1 to exact eigenvalues | measure | peak MB |",
            "|---|---|---|---|---|"]
    return head + rows


# ---------------------------------------------------------------------- report
PARTS = ("digits", "models", "support", "scale")


def _versions() -> str:
    from importlib.metadata import version

    out = []
    for name, mod in anchors_available().items():
        if isinstance(mod, Exception):
            out.append(f"{name}: not importable ({type(mod).__name__}: {mod})")
        else:
            dist = {"PyHessian": "pyhessian", "curvlinops": "curvlinops-for-pytorch",
                    "hessian-eigenthings": "hessian-eigenthings"}[name]
            out.append(f"{name} {version(dist)}")
    try:
        out.append(f"transformers {version('transformers')}")
    except Exception:  # noqa: BLE001 - optional
        out.append("transformers: not installed")
    return "; ".join(out)


def digits_part(quick: bool) -> list[str]:
    """The MLP and CNN products, the top eigenvalue, trace and density on digits."""
    X, y, src = digits()
    X, y = X.to(C.DEVICE), y.to(C.DEVICE)
    out = [f"Data of the next five sections: {src} {tuple(X.shape)}, float32, full batch.",
           ""]
    big = trained(mlp().to(C.DEVICE), X, y)
    out += [f"## Hessian-vector products: MLP 64-256-256-10 tanh ({nparams(big):,} parameters)",
            ""] + product_table(big, X, y, quick) + [""]
    cnn = trained(_init(CNN(), 2).to(C.DEVICE), X, y)
    out += [f"## Hessian-vector products: small CNN ({nparams(cnn):,} parameters)", ""]
    out += product_table(cnn, X, y, quick) + [""]
    out += ["## Top eigenvalue (MLP 85,002)", ""] + eig_table(big, X, y, quick)[0] + [""]
    small, Hd = small_case(X, y)
    out += ["## Trace, 100 products", ""] + trace_table(small, X, y, Hd, quick) + [""]
    out += ["## Spectral density (SLQ)", ""] + density_table(small, X, y, Hd, quick) + [""]
    return out


def models_part(quick: bool) -> list[str]:
    """GPT-2 and ResNet-18 side by side with the anchors (issue 16)."""
    import hessian_anchors as A

    out = ["## The models people train: GPT-2 and ResNet-18, side by side", "",
           "Every tool computes the Hessian of the same loss. PyHessian and curvlinops take "
           "only `(inputs, targets)` tensors and a module returning one tensor: they get the "
           "GPT-2 through an adapter (`input_ids` -> shifted logits, flattened, and the "
           "shifted labels), what their users write; hessian-eigenthings takes the dict "
           "batch and `output.loss` (its `hf_lm_loss`); ours the dict batch with "
           "`hessian.LanguageModelLoss()` and `output=\"logits\"`. Every label counts "
           "here (no padding), so that the four compute the same matrix.", ""]
    case = A.gpt2_case(quick)
    if case is None:
        out += ["GPT-2: transformers is not installed; skipped.", ""]
    else:
        out += A.side_by_side(case, quick) + [""]
    return out + A.side_by_side(A.resnet_case(quick), quick) + [""]


def support_part(quick: bool) -> list[str]:
    import hessian_support as S

    return ["## What each tool supports (measured)", "",
            "Each cell builds the tool's operator for one feature on a small float64 problem "
            "and compares one product with impalpable's float64 operator (which "
            "`tests/hessian` checks against dense `torch.func` Hessians): *yes* (relative "
            "error under 1e-6), *wrong* (with the error), *fails* (with the exception), "
            "*no API*. The batches are unequal (10 and 3 samples; 3 and 2 sequences with "
            "15 and 8 counted tokens).", ""] + S.table() + [
            "", "hessian-eigenthings' products over several batches equal the *unweighted* "
            "mean of the batch curvatures (checked to 1e-16 on the MLP's loader and GGN, "
            "3e-8 on the dict batches, whose loss transformers computes in float32). "
            "curvlinops' dict-batch error is not that of weighting the batches by samples "
            "alone (it is 0.5% from the sample-weighted mean, measured once); its cause was "
            "not traced further.", ""]


def run(quick: bool = False, threads: int | None = 1, device: str = "cpu",
        parts: tuple = PARTS) -> str:
    """Run the benchmark and return a Markdown report.

    ``threads`` sets ``torch.set_num_threads`` (default 1: on a shared 2-core machine one
    thread gives far steadier timings; ``None`` leaves torch's default). ``device`` runs
    models, data and probes there (``"cuda"`` on a GPU machine). ``parts``: any of
    ``"digits"`` (products, top eigenvalue, trace, density on small models), ``"models"``
    (GPT-2 and ResNet-18 with the anchors), ``"support"`` (the measured support table),
    ``"scale"`` (the estimators at ResNet-18 scale: time split and memory).
    """
    import hessian_scale

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    C.set_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    where = torch.cuda.get_device_name() if C.DEVICE.type == "cuda" else (
        f"{torch.get_num_threads()} threads")
    out = ["# Curvature of PyTorch models: impalpable `hessian` vs anchors", "",
           f"torch {torch.__version__}, {where}. {_versions()}. Parts: {', '.join(parts)}"
           f"{' (--quick sizes)' if quick else ''}.", ""]
    makers = {"digits": digits_part, "models": models_part, "support": support_part,
              "scale": hessian_scale.run}
    for part in PARTS:
        if part in parts:
            out += makers[part](quick)
    return "\n".join(out)


if __name__ == "__main__":
    n = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
    dev = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    only = (tuple(sys.argv[sys.argv.index("--only") + 1].split(",")) if "--only" in sys.argv
            else PARTS)
    print(run(quick="--quick" in sys.argv, threads=n, device=dev, parts=only))
