r"""The main job, ``impalpable demo`` (``make demo``): three spectra with their exact answers.

(a) **The Hessian of a small trained network.** A 64-32-10 tanh perceptron is trained
    on the handwritten digits bundled with scikit-learn (no download); the spectral
    density (SLQ), the top eigenvalues (thick-restart Lanczos) and the trace (XTrace) of
    the Hessian of its training loss come from Hessian-vector products alone
    (:mod:`hessian`), and are set beside the eigenvalues of the dense Hessian, formed
    in closed form (:func:`mlp_hessian`, independent of automatic differentiation).
(b) **An RBF kernel matrix** over a few thousand points of a Gaussian mixture (the data
    of ``examples/kernel_spectrum.py``): SLQ on the matrix-free kernel operator
    (:func:`spectra.kernel_operator`), free decompression from four point subsamples
    whose block spectra are themselves estimated matrix-free (deflated SLQ,
    :mod:`freedecomp.blocks`), and the Nystrom estimate from one block, against the
    exact eigenvalues.
(c) **A Marchenko-Pastur flow.** Free decompression of an ``n x n`` principal block of
    a white Wishart matrix to several sizes ``N``, against the closed-form laws
    :math:`MP(N/p)` and the eigenvalues of the ``N x N`` blocks.

Figures go to ``demo.json``, pictures to PNG files, and ``index.html`` shows both.
"""

from __future__ import annotations

import html
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import spectra
from spectra.distances import kolmogorov_smirnov, wasserstein1

from . import figures as figs
from .report import dumps, format_table

__all__ = ["DemoSizes", "Part", "mlp_hessian", "run_demo"]


@dataclass(frozen=True)
class DemoSizes:
    """Problem sizes of the main job (``FULL`` for ``make demo``, ``SMALL`` for tests)."""

    hidden: int
    train: int
    test: int
    epochs: int
    probes: int
    steps: int
    trace_matvecs: int
    mp_sample: int
    mp_columns: int
    mp_sizes: tuple[int, ...]
    kernel_points: int
    kernel_sample: int
    kernel_dim: int


FULL = DemoSizes(hidden=32, train=1437, test=360, epochs=100, probes=10, steps=50,
                 trace_matvecs=150, mp_sample=200, mp_columns=3200,
                 mp_sizes=(400, 800, 1600, 2400), kernel_points=3000, kernel_sample=375,
                 kernel_dim=8)
SMALL = DemoSizes(hidden=8, train=400, test=200, epochs=150, probes=6, steps=30,
                  trace_matvecs=60, mp_sample=80, mp_columns=640, mp_sizes=(160, 320),
                  kernel_points=800, kernel_sample=100, kernel_dim=8)


@dataclass
class Part:
    """One part of the main job: its figures, table, pictures and explanation."""

    key: str
    title: str
    text: str
    figures: dict = field(default_factory=dict)
    headers: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    images: list = field(default_factory=list)
    skipped: str = ""


# ============================================================================ (a) Hessian
def mlp_hessian(X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                W2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    r"""Dense Hessian of the mean cross-entropy of a one-hidden-layer tanh network.

    For :math:`f(x) = W_2 \tanh(W_1 x + b_1) + b_2` with ``c`` outputs and
    :math:`L = \frac1N \sum_n \ell(f(x_n), y_n)`, write :math:`u_n = (x_n, 1)`,
    :math:`z_n = \tanh(a_n)`, :math:`v_n = (z_n, 1)`, :math:`s = 1 - z^2`,
    :math:`s' = -2 z s`, :math:`g_n = (p_n - e_{y_n})/N` and
    :math:`\Lambda_n = (\mathrm{diag}\,p_n - p_n p_n^T)/N` with :math:`p_n` the softmax.
    Then :math:`H = \sum_n J_n^T \Lambda_n J_n + \sum_{n,k} g_{nk} \nabla^2 f_{nk}` with

    .. math::
        \frac{\partial f_k}{\partial V_1[i,j]} = W_2[k,i]\, s_i u_j, \quad
        \frac{\partial f_k}{\partial V_2[k',j]} = \delta_{kk'} v_j, \quad
        \frac{\partial^2 f_k}{\partial V_1[i,j]\,\partial V_1[i',j']} =
            \delta_{ii'} W_2[k,i]\, s'_i u_j u_{j'}, \quad
        \frac{\partial^2 f_k}{\partial V_1[i,j]\,\partial V_2[k',i']} =
            \delta_{kk'}\delta_{ii'} s_i u_j,

    :math:`V_1 = [W_1\ b_1]`, :math:`V_2 = [W_2\ b_2]`. Every block is a matrix product
    over the samples (``O(N h^2 d^2)`` flops, no automatic differentiation), so it is an
    independent reference for Hessian-vector products.

    Parameters
    ----------
    X : ndarray, shape ``(N, d)``
    y : ndarray of int, shape ``(N,)``
    W1, b1, W2, b2 : ndarray
        Shapes ``(h, d)``, ``(h,)``, ``(c, h)``, ``(c,)`` (``torch.nn.Linear`` layout).

    Returns
    -------
    ndarray, shape ``(P, P)``
        In the order of ``torch.nn.Module.parameters()``: ``W1`` (row-major), ``b1``,
        ``W2``, ``b2``; ``P = h (d + 1) + c (h + 1)``.
    """
    N, d = X.shape
    h, c = W1.shape[0], W2.shape[0]
    d1, d2 = d + 1, h + 1
    z = np.tanh(X @ W1.T + b1)
    s = 1.0 - z * z
    f = z @ W2.T + b2
    p = np.exp(f - f.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = p.copy()
    g[np.arange(N), y] -= 1.0
    g /= N
    Lam = (p[:, :, None] * np.eye(c) - p[:, :, None] * p[:, None, :]) / N
    u = np.hstack([X, np.ones((N, 1))])
    v = np.hstack([z, np.ones((N, 1))])

    def gram(A: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``sum_n A_n (x) a_n b_n^T`` as a ``(rows(A) rows(a), cols(A) cols(b))`` matrix."""
        r, q = A.shape[1], A.shape[2]
        M = A.reshape(N, r * q).T @ (a[:, :, None] * b[:, None, :]).reshape(N, -1)
        return M.reshape(r, q, a.shape[1], b.shape[1]).transpose(0, 2, 1, 3)

    WL = np.einsum("ki,nkl->nil", W2, Lam)
    H11 = gram(np.einsum("nil,lj->nij", WL, W2) * (s[:, :, None] * s[:, None, :]), u, u)
    H12 = gram(WL * s[:, :, None], u, v)
    H22 = gram(Lam, v, v).reshape(c * d2, c * d2)
    w = (g @ W2) * (-2.0 * z * s)  # sum_k g_k W2[k, i] s'_i
    R11 = ((w[:, :, None] * u[:, None, :]).reshape(N, h * d1).T @ u).reshape(h, d1, d1)
    R12 = ((s[:, :, None] * u[:, None, :]).reshape(N, h * d1).T @ g).reshape(h, d1, c)
    idx = np.arange(h)
    H11[idx, :, idx, :] += R11
    H12[idx, :, :, idx] += R12
    H11 = H11.reshape(h * d1, h * d1)
    H12 = H12.reshape(h * d1, c * d2)
    H = np.block([[H11, H12], [H12.T, H22]])
    i1 = np.arange(h * d1).reshape(h, d1)
    i2 = h * d1 + np.arange(c * d2).reshape(c, d2)
    perm = np.concatenate([i1[:, :d].ravel(), i1[:, d], i2[:, :h].ravel(), i2[:, h]])
    return H[np.ix_(perm, perm)]


def _train_mlp(sz: DemoSizes, seed: int) -> dict:
    """Train the 64-h-10 tanh network on the digits (full batch Adam, float64)."""
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(y.size)
    tr, te = order[: sz.train], order[sz.train: sz.train + sz.test]
    X = torch.tensor(X / 16.0, dtype=torch.float64)
    y = torch.tensor(y)
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, sz.hidden), torch.nn.Tanh(),
                                torch.nn.Linear(sz.hidden, 10)).double()
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = layer.in_features ** -0.5
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(sz.epochs):
        opt.zero_grad()
        loss = loss_fn(model(X[tr]), y[tr])
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc_tr = float((model(X[tr]).argmax(1) == y[tr]).double().mean())
        acc_te = float((model(X[te]).argmax(1) == y[te]).double().mean())
        loss = float(loss_fn(model(X[tr]), y[tr]))
    return {"model": model, "loss_fn": loss_fn, "data": (X[tr], y[tr]), "loss": loss,
            "train_accuracy": acc_tr, "test_accuracy": acc_te}


def _timed(timed: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` and record its wall time in ``timed[name]``."""
    t = time.perf_counter()
    res = fn()
    timed[name] = time.perf_counter() - t
    return res


def _hessian_rows(den: Any, top: Any, tr: Any, exact: np.ndarray, trace: float, w1: float,
                  timed: dict[str, float]) -> list:
    P = exact.size
    top_exact = exact[::-1][:5]
    return [
        ["density: W1 to exact", f"{w1:.3g}", "-", den.num_matvecs, f"{timed['density']:.1f}"],
        *[[f"lambda_{i + 1}", f"{top.eigenvalues[i]:.10f}", f"{top_exact[i]:.10f}",
           top.num_matvecs if i == 0 else "", f"{timed['eigs']:.1f}" if i == 0 else ""]
          for i in range(5)],
        ["trace (xtrace)", f"{tr.value:.5f} +- {tr.stderr:.1g}", f"{trace:.5f}",
         tr.num_matvecs, f"{timed['trace']:.1f}"],
        ["dense Hessian + eigvalsh", "", f"{P} x {P}", "",
         f"{timed['dense'] + timed['eigvalsh']:.1f}"],
    ]


def _hessian_estimates(net: dict, sz: DemoSizes, seed: int, progress: bool,
                       timed: dict[str, float]) -> dict:
    """SLQ, Lanczos and XTrace on Hessian-vector products; the dense Hessian beside them."""
    import torch

    import hessian

    X, y = net["data"]
    H = hessian.HessianOperator(net["model"], net["loss_fn"], (X, y))
    kw = {"rng": seed, "progress": progress}
    den = _timed(timed, "density", lambda: hessian.density(
        H, num_probes=sz.probes, num_steps=sz.steps, **kw))
    top = _timed(timed, "eigs", lambda: hessian.top_eigenvalues(H, k=5, tol=1e-8, **kw))
    tr = _timed(timed, "trace", lambda: hessian.trace(H, num_matvecs=sz.trace_matvecs, **kw))
    Ws = [p.detach().numpy() for p in net["model"].parameters()]
    Hd = _timed(timed, "dense", lambda: mlp_hessian(X.numpy(), y.numpy(), *Ws))
    lam = _timed(timed, "eigvalsh", lambda: np.linalg.eigvalsh(Hd))
    v = np.random.default_rng(seed).standard_normal((H.shape[0], 4))
    check = float(np.linalg.norm(H.matmat(torch.from_numpy(v)).numpy() - Hd @ v)
                  / np.linalg.norm(Hd @ v))
    return {"den": den, "top": top, "tr": tr, "lam": lam, "trace": float(np.trace(Hd)),
            "check": check}


def _hessian_figures(net: dict, e: dict, timed: dict[str, float]) -> dict:
    """The figures of part (a) from :func:`_hessian_estimates`."""
    den, top, tr, lam = e["den"], e["top"], e["tr"], e["lam"]
    top_exact = lam[::-1][:5]
    return {
        "parameters": lam.size, "train_samples": int(net["data"][0].shape[0]),
        "train_loss": net["loss"], "train_accuracy": net["train_accuracy"],
        "test_accuracy": net["test_accuracy"], "product_check": e["check"],
        "density": {"num_matvecs": den.num_matvecs, "w1": wasserstein1(den, lam),
                    "ks": kolmogorov_smirnov(den, lam), "bounds": den.bounds,
                    "exact_bounds": (lam[0], lam[-1]), "nodes": den.nodes,
                    "weights": den.weights},
        "top_eigenvalues": {"estimate": top.eigenvalues, "exact": top_exact,
                            "residual_norms": top.residual_norms,
                            "max_rel_error": np.max(np.abs(top.eigenvalues - top_exact)
                                                    / np.abs(top_exact)),
                            "num_matvecs": top.num_matvecs, "converged": top.converged},
        "trace": {"estimate": tr.value, "stderr": tr.stderr, "exact": e["trace"],
                  "num_matvecs": tr.num_matvecs, "method": tr.method},
        "seconds": timed,
    }


def part_hessian(out: Path, sz: DemoSizes, seed: int, progress: bool) -> Part:
    """(a) Hessian spectrum of the trained network: SLQ, Lanczos, XTrace vs dense."""
    part = Part("a", "Hessian of a network trained on the digits", "")
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        part.skipped = (f"skipped: needs scikit-learn and PyTorch ({err}); "
                        "pip install scikit-learn torch")
        return part
    timed: dict[str, float] = {}
    net = _timed(timed, "train", lambda: _train_mlp(sz, seed))
    e = _hessian_estimates(net, sz, seed, progress, timed)
    part.figures = _hessian_figures(net, e, timed)
    P = e["lam"].size
    part.headers = ["quantity", "estimate", "exact", "products", "seconds"]
    part.rows = _hessian_rows(e["den"], e["top"], e["tr"], e["lam"], e["trace"],
                              part.figures["density"]["w1"], timed)
    part.text = (
        f"A 64-{sz.hidden}-10 tanh perceptron ({P:,} parameters) trained by full-batch Adam "
        f"on {part.figures['train_samples']:,} of scikit-learn's 8x8 digits (training loss "
        f"{net['loss']:.3f}, test accuracy {net['test_accuracy']:.1%}). The spectral density "
        "(stochastic Lanczos quadrature), the five largest eigenvalues (thick-restart "
        "Lanczos) and the trace (XTrace) of the Hessian of its training loss use "
        "Hessian-vector products only. The exact column comes from the dense Hessian, formed "
        "in closed form without automatic differentiation (its products agree with "
        f"autograd's to {e['check']:.1e}), and numpy.linalg.eigvalsh.")
    fig = figs.hessian_figure(e["den"], e["top"], e["lam"], title=f"Hessian of a "
                                 f"64-{sz.hidden}-10 network on the digits ({P:,} parameters)")
    figs.save(fig, out / "hessian_spectrum.png")
    part.images = ["hessian_spectrum.png"]
    return part


# ============================================================================ (b) kernel
def gaussian_mixture(N: int, d: int, clusters: int, rng: Any) -> np.ndarray:
    """``N`` points from ``clusters`` Gaussian clusters of different widths in ``R^d``.

    The data of ``examples/kernel_spectrum.py``: centres ``2 z``, widths uniform in
    ``[0.5, 1.5]``, labels uniform.
    """
    centres = 2.0 * rng.standard_normal((clusters, d))
    widths = rng.uniform(0.5, 1.5, clusters)
    label = rng.integers(0, clusters, N)
    return centres[label] + widths[label, None] * rng.standard_normal((N, d))


def _kernel_estimates(sz: DemoSizes, seed: int, timed: dict[str, float]) -> dict:
    """SLQ, free decompression from SLQ-fed point subsamples, Nystrom; the exact.

    Free decompression sees four blocks of :func:`freedecomp.samplers.kernel_blocks`,
    Nystrom one block; the exact eigenvalues come from the dense matrix.
    """
    from freedecomp import decompress
    from freedecomp.samplers import kernel_blocks

    N, n = sz.kernel_points, sz.kernel_sample
    g = np.random.default_rng(seed)
    X = gaussian_mixture(N, sz.kernel_dim, 10, g)
    kb = kernel_blocks(X, "rbf")
    K = kb.operator
    den = _timed(timed, "slq", lambda: spectra.density(K, num_probes=sz.probes,
                                                       num_steps=sz.steps, rng=seed))
    opts = {"dense_max": 0, "num_probes": sz.probes, "num_steps": sz.steps}
    res = _timed(timed, "decompress", lambda: decompress(kb, N, n=n, total=N, rng=seed,
                                                          num_samples=4, blocks=opts))
    idx = np.sort(g.choice(N, size=n, replace=False))
    nys = np.concatenate([np.zeros(N - n), np.linalg.eigvalsh(K.block(idx, idx)) * (N / n)])
    lam = _timed(timed, "exact", lambda: np.linalg.eigvalsh(K.block(slice(None),
                                                                    slice(None))))
    return {"K": K, "den": den, "res": res, "nys": nys, "lam": lam}


def _kernel_text(N: int, n: int, sz: DemoSizes, K: Any, den: Any, res: Any,
                 found: dict) -> str:
    """The explanation of part (b), from the figures it shows."""
    est = res.diagnostics.block_estimates or ()
    products = sum(r["num_matvecs"] for r in est)
    outl = [r["outliers"] for r in est]
    fd, ny = found["free decompression"]["w1"], found["Nystrom (block x N/n)"]["w1"]
    model = str(res.diagnostics.get("model"))
    chosen = (f"Its validation (n/2 -> n on the blocks) kept the {model} baseline: no "
              "free-decompression model validated better on these blocks. " if model in
              ("nystrom-pad", "block") else f"Its validation kept the model {model}. ")
    verdict = chosen + (
        f"It lands closer to the exact spectrum than Nystrom from one block (W1 {fd:.2e} "
        f"against {ny:.2e})" if fd < ny else
        f"Nystrom from one block lands closer (W1 {ny:.2e} against {fd:.2e})")
    flag = "" if res.diagnostics.get("decompressible") else (
        " The result flags itself as unreliable (decompressible = False) and says why in "
        "its warnings.")
    return (
        f"The RBF kernel exp(-|x - y|^2 / (2 h^2)) over N = {N:,} points of a Gaussian "
        f"mixture in {sz.kernel_dim} dimensions (bandwidth h = {K.bandwidth:.3g}, median "
        f"heuristic), as an operator that is never formed. Stochastic Lanczos quadrature on "
        f"the whole operator uses {den.num_matvecs} products with it. Free decompression "
        f"sees only four random subsamples of n = {n} points: each block is the kernel "
        f"of its points as an operator, its spectrum "
        f"estimated by deflated SLQ ({products} products with n x n blocks in all; the "
        f"{min(outl, default=0)}-{max(outl, default=0)} eigenpairs each pilot run deflated "
        "are the block's exact outliers), and the four block spectra are extrapolated to "
        f"N. {verdict}; Nystrom is a block's eigenvalues times N/n, padded with "
        f"zeros.{flag} The reference is the dense matrix's eigvalsh.")


def part_kernel(out: Path, sz: DemoSizes, seed: int) -> Part:
    """(b) RBF kernel spectrum: SLQ, free decompression from SLQ-fed blocks, Nystrom."""
    N, n = sz.kernel_points, sz.kernel_sample
    timed: dict[str, float] = {}
    e = _kernel_estimates(sz, seed, timed)
    K, den, res, nys, lam = e["K"], e["den"], e["res"], e["nys"], e["lam"]
    est = {"SLQ": den, "free decompression": res.density, "Nystrom (block x N/n)": nys}
    tops = {"SLQ": den.bounds[1], "free decompression": res.extreme_eigenvalues[1],
            "Nystrom (block x N/n)": nys[-1]}
    rows, found = [], {}
    for name, estimate in est.items():
        w1, ks = wasserstein1(estimate, lam), kolmogorov_smirnov(estimate, lam)
        found[name] = {"w1": w1, "ks": ks, "largest": tops[name]}
        rows.append([name, f"{w1:.2e}", f"{ks:.3f}", f"{tops[name]:.4g}"])
    rows.append(["exact (dense eigvalsh)", "-", "-", f"{lam[-1]:.4g}"])
    model = res.diagnostics.get("model")
    part = Part("b", "An RBF kernel matrix", _kernel_text(N, n, sz, K, den, res, found))
    part.figures = {"points": N, "dimension": sz.kernel_dim, "bandwidth": K.bandwidth,
                    "block_size": n, "blocks": 4, "model": model, "exact_largest": lam[-1],
                    "block_estimates": list(res.diagnostics.block_estimates or ()),
                    "decompressible": res.diagnostics.get("decompressible"),
                    "warnings": res.diagnostics.get("warnings", []), **found,
                    "seconds": timed}
    part.headers = ["estimate", "W1 to exact", "KS to exact", "largest eigenvalue"]
    part.rows = rows
    fig = figs.kernel_figure(lam, {
        f"SLQ, {den.num_matvecs} products": den,
        f"decompress ({model}) from 4 SLQ-fed blocks of n = {n}": res,
        "Nystrom: block eigenvalues x N/n": nys},
        title=f"RBF kernel of N = {N:,} Gaussian-mixture points (d = {sz.kernel_dim}), "
        f"bandwidth {K.bandwidth:.2f}")
    figs.save(fig, out / "kernel_spectrum.png")
    part.images = ["kernel_spectrum.png"]
    return part


# ============================================================================ (c) MP flow
def part_flow(out: Path, sz: DemoSizes, seed: int) -> Part:
    """(c) Free decompression of a Wishart block against Marchenko-Pastur closed forms."""
    from freedecomp import decompress, laws
    from freedecomp.plot import decompression

    p, n = sz.mp_columns, sz.mp_sample
    timed: dict[str, float] = {}
    W = laws.wishart(max(sz.mp_sizes), p, rng=seed) / p
    res = _timed(timed, "decompress", lambda: decompress(W[:n, :n], list(sz.mp_sizes),
                                                          rng=seed))
    exact = _timed(timed, "exact", lambda: {N: np.linalg.eigvalsh(W[:N, :N])
                                            for N in sz.mp_sizes})
    mp = [laws.MarchenkoPastur(N / p) for N in sz.mp_sizes]
    rows, flow = [], []
    for r, law in zip(res.flow, mp, strict=True):
        d = r.density
        lo, hi = r.edges[0][0], r.edges[-1][1]
        w_law = wasserstein1(d, law.quantiles(4000))
        w_ex = wasserstein1(d, exact[r.size])
        flow.append({"size": r.size, "alpha": r.alpha, "edges": (lo, hi),
                     "closed_form_edges": law.support,
                     "exact_extremes": (exact[r.size][0], exact[r.size][-1]),
                     "w1_to_closed_form": w_law, "w1_to_exact": w_ex,
                     "decompressible": r.diagnostics.get("decompressible")})
        rows.append([f"{r.size:,}", f"{r.size / p:.4g}", f"{lo:.4f}", f"{law.support[0]:.4f}",
                     f"{hi:.4f}", f"{law.support[1]:.4f}", f"{w_law:.2g}", f"{w_ex:.2g}"])
    model = res.diagnostics.get("model")
    part = Part("c", "A Marchenko-Pastur decompression flow", (
        f"W = X X^T / p with X of shape N x p (p = {p:,}) has the Marchenko-Pastur law of "
        f"ratio N/p. From the eigenvalues of its leading {n} x {n} block only, free "
        f"decompression (model {model}, chosen by validation) predicts the spectrum of the "
        f"leading N x N blocks for N = {', '.join(f'{N:,}' for N in sz.mp_sizes)}. "
        "Support edges and the Wasserstein-1 distance are compared with the closed form "
        "MP(N/p) and with the exact eigenvalues of each block."))
    part.figures = {"columns": p, "sample_size": n, "model": model, "flow": flow,
                    "seconds": timed}
    part.headers = ["size N", "N/p", "lower edge", "closed form", "upper edge", "closed form",
                    "W1 to law", "W1 to exact"]
    part.rows = rows
    fig = decompression(res, sample=np.linalg.eigvalsh(W[:n, :n]), reference=mp,
                        eigenvalues=exact, title=f"Free decompression of a {n} x {n} "
                        f"Wishart block (p = {p:,})")
    figs.save(fig, out / "mp_flow.png")
    part.images = ["mp_flow.png"]
    return part


# ============================================================================ page
_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;
line-height:1.45}h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid
#ddd}table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:1em 0}
td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:.1em .3em}.skip{color:#a33}"""


def _html(parts: list[Part], command: str, seconds: float, size: str) -> str:
    e = html.escape
    body = [f"<h1>impalpable demo ({e(size)} size)</h1>",
            f"<p>Produced by <code>{e(command)}</code> in {seconds:.1f} s on "
            f"{e(platform.machine())}, Python {e(platform.python_version())}. "
            "All figures are in <a href='demo.json'>demo.json</a>.</p>"]
    for part in parts:
        body.append(f"<h2>({part.key}) {e(part.title)}</h2>")
        if part.skipped:
            body.append(f"<p class='skip'>{e(part.skipped)}</p>")
            continue
        body.append(f"<p>{e(part.text)}</p>")
        head = "".join(f"<th>{e(str(h))}</th>" for h in part.headers)
        rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>"
                       for r in part.rows)
        body.append(f"<table><tr>{head}</tr>{rows}</table>")
        body += [f"<p><img src='{e(img)}' alt='{e(part.title)}'></p>" for img in part.images]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>impalpable demo</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def run_demo(out: str | Path, *, small: bool = False, seed: int = 0, quiet: bool = False,
             progress: bool = False, command: str = "impalpable demo") -> dict:
    """Run the main job and write its pictures, ``demo.json`` and ``index.html``.

    Parameters
    ----------
    out : str or Path
        Output folder (created).
    small : bool
        Reduced sizes (for the tests): a few seconds instead of about a minute.
    seed : int
        Seeds the data split, the initial weights and every estimator.
    quiet : bool
        Print nothing.
    progress : bool
        Progress bars on standard error for the curvature estimates.
    command : str
        The command line shown on the page.

    Returns
    -------
    dict
        The figures written to ``demo.json``, one entry per part.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sz = SMALL if small else FULL
    say = (lambda *a: None) if quiet else print
    t0 = time.perf_counter()
    runs = [lambda: part_hessian(out, sz, seed, progress), lambda: part_kernel(out, sz, seed),
            lambda: part_flow(out, sz, seed)]
    parts = []
    for run in runs:
        t = time.perf_counter()
        part = run()
        part.figures["part_seconds"] = time.perf_counter() - t
        parts.append(part)
        say(f"\n({part.key}) {part.title}")
        say(part.skipped or format_table(part.headers, part.rows))
    total = time.perf_counter() - t0
    figures = {"command": command, "size": "small" if small else "full", "seed": seed,
               "seconds": total, **{p.key: p.figures or {"skipped": p.skipped} for p in parts}}
    (out / "demo.json").write_text(dumps(figures) + "\n")
    page = out / "index.html"
    page.write_text(_html(parts, command, total, figures["size"]))
    for p in parts:
        for img in p.images:
            say(f"wrote {out / img}")
    say(f"wrote {out / 'demo.json'}\n\nopen {page.resolve()}  ({total:.1f} s)")
    return figures
