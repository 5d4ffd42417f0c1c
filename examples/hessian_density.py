r"""Hessian spectral density of a small network, checked against its exact eigenvalues.

A one-hidden-layer tanh network is trained on the scikit-learn digits (8 x 8 images,
10 classes) with the cross-entropy loss. Its loss Hessian is small enough here to form
exactly (``torch.func.hessian`` of the loss as a function of the flat parameters), so
the matrix-free estimates can be checked. ``hessian.density`` estimates by stochastic
Lanczos quadrature (SLQ):

* the density of the full Hessian (``kind="hessian"``);
* the density of the generalised Gauss-Newton matrix (``kind="ggn"``), the positive
  semi-definite part :math:`\frac1N \sum_i J_i^T \Lambda_i J_i`, whose exact form is
  built here from the network's Jacobian and the softmax Hessian
  :math:`\Lambda_i = \operatorname{diag}(p_i) - p_i p_i^T`;
* one density per layer (``per_layer=True``): the diagonal blocks of the Hessian for
  the parameters of each ``Linear`` module.

Each estimate is compared with the exact eigenvalues in the Wasserstein-1 distance
(relative to the mean absolute eigenvalue, the distance from the exact spectrum to a
point mass at zero) and by its top node, which should match the top eigenvalue. The
figure shows the smoothed SLQ curves over histograms of the exact eigenvalues; the
density axis is logarithmic, since most eigenvalues of a trained network's Hessian
sit near zero.

Run ``python examples/hessian_density.py [--small] [--out DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import hessian
from spectra.testing import wasserstein1

# Tolerances, set from measurements (rng 0..9 at --small, 0..2 at full size): W1 / mean
# |eigenvalue| was at most 0.062 (--small: 4 probes x 30 steps) and 0.019 (full size:
# 10 probes x 80 steps) over the four estimates; the top node matched the top eigenvalue
# to 2e-15 relative (outliers converge and are deflated with their exact weight).
W1_TOL = {"small": 0.1, "full": 0.04}  # Wasserstein-1 / mean |eigenvalue|
TOP_RTOL = 1e-8  # top quadrature node vs the top eigenvalue, relative


def digits(num_samples: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The scikit-learn digits scaled to [-0.5, 0.5] (float64), first ``num_samples``."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:num_samples], y[:num_samples]
    return torch.tensor(X / 16.0 - 0.5), torch.tensor(y)


def train(X: torch.Tensor, y: torch.Tensor, hidden: int, steps: int,
          generator: torch.Generator) -> torch.nn.Module:
    """Full-batch Adam on the cross-entropy loss, from a seeded initialisation."""
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden, dtype=X.dtype),
                                torch.nn.Tanh(),
                                torch.nn.Linear(hidden, 10, dtype=X.dtype))
    with torch.no_grad():  # PyTorch's default initialisation, drawn from our generator
        for layer in (model[0], model[2]):
            bound = 1.0 / np.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()
    return model.eval()


def exact_curvature(model: torch.nn.Module, X: torch.Tensor,
                    y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Dense Hessian and Gauss-Newton matrix of the mean cross-entropy, by torch.func.

    Returns the two ``P x P`` matrices and the parameter sizes in ``model.parameters()``
    order (the order of the curvature operators' flat vectors).
    """
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    sizes = [p.numel() for p in params]

    def unflatten(flat: torch.Tensor) -> dict:
        parts = torch.split(flat, sizes)
        return {n: t.reshape(p.shape) for n, t, p in zip(names, parts, params, strict=True)}

    def logits(flat: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, unflatten(flat), (X,))

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits(flat), y)

    flat = torch.cat([p.reshape(-1) for p in params])
    H = torch.func.hessian(loss)(flat)
    J = torch.func.jacrev(logits)(flat)  # (N, 10, P)
    p = torch.softmax(logits(flat), dim=1).detach()
    Lam = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # softmax Hessian
    LJ = torch.einsum("ncd,ndq->ncq", Lam, J)
    G = J.reshape(-1, J.shape[-1]).T @ LJ.reshape(-1, J.shape[-1]) / X.shape[0]
    return (0.5 * (H + H.T)).numpy(), (0.5 * (G + G.T)).numpy(), sizes


def compare(den, exact: np.ndarray) -> dict:
    """W1 (relative to the mean |eigenvalue|) and top-node error of one estimate."""
    lam = np.linalg.eigvalsh(exact)
    return {"eigenvalues": lam, "w1": wasserstein1(den, lam) / np.abs(lam).mean(),
            "top": abs(den.nodes.max() - lam[-1]) / lam[-1]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="300 images, 8 hidden units (610 parameters), for the tests")
    parser.add_argument("--out", type=Path, default=Path("out/examples"))
    args = parser.parse_args(argv)
    num_samples, hidden, steps = (300, 8, 150) if args.small else (None, 16, 300)
    probes, lanczos_steps = (4, 30) if args.small else (10, 80)

    g = torch.Generator().manual_seed(0)
    X, y = digits(num_samples)
    model = train(X, y, hidden, steps, g)
    loss_fn = torch.nn.CrossEntropyLoss()
    accuracy = float((model(X).argmax(1) == y).double().mean())
    H, G, sizes = exact_curvature(model, X, y)

    opts = {"num_probes": probes, "num_steps": lanczos_steps, "rng": 0, "progress": False}
    den = {"Hessian": hessian.density(model, loss_fn, (X, y), **opts),
           "GGN": hessian.density(model, loss_fn, (X, y), kind="ggn", **opts)}
    layers = hessian.density(model, loss_fn, (X, y), per_layer=True, **opts)
    # Diagonal blocks of the exact Hessian: module "0" owns parameters 0-1 (weight,
    # bias), module "2" parameters 2-3, in the flat order of the operators.
    edges = np.cumsum([0, sizes[0] + sizes[1], sizes[2] + sizes[3]])
    blocks = {name: H[a:b, a:b] for name, a, b in zip(layers, edges[:-1], edges[1:],
                                                      strict=True)}
    checks = {"Hessian": compare(den["Hessian"], H), "GGN": compare(den["GGN"], G)}
    checks.update({f"layer {name}": compare(layers[name], blocks[name]) for name in layers})

    # The claims this example makes, checked (tolerances: see W1_TOL).
    assert accuracy > 0.95, accuracy
    tol = W1_TOL["small" if args.small else "full"]
    for name, c in checks.items():
        assert c["w1"] < tol, (name, c["w1"])
        assert c["top"] < TOP_RTOL, (name, c["top"])
    # The GGN is positive semi-definite; the Hessian of a trained network is not.
    assert den["GGN"].nodes.min() > -1e-8 * checks["GGN"]["eigenvalues"][-1]
    assert checks["Hessian"]["eigenvalues"][0] < 0

    _plot(den, layers, checks, args.out, P=H.shape[0], N=X.shape[0])
    for name, c in checks.items():
        print(f"{name:10s} n = {c['eigenvalues'].size:5d}  W1 / mean|lambda| = {c['w1']:.4f}"
              f"  top eigenvalue {c['eigenvalues'][-1]:.5f} (rel. error {c['top']:.1e})")
    print(f"training accuracy {accuracy:.3f}")
    return {"accuracy": accuracy, **{k: {"w1": c["w1"], "top": c["top"]}
                                     for k, c in checks.items()}}


def _plot(den: dict, layers: dict, checks: dict, out: Path, *, P: int, N: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import spectra

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), dpi=150, layout="constrained")
    panels = [("Hessian", den["Hessian"]), ("GGN", den["GGN"])]
    panels += [(f"layer {name}", d) for name, d in layers.items()]
    for ax, (name, d) in zip(axes.ravel(), panels, strict=True):
        lam = checks[name]["eigenvalues"]
        spectra.plot.density(d, ax, reference=lam, bins=60, nodes=None,
                             title=f"{name}: {lam.size} x {lam.size} "
                                   f"(W1 / mean|$\\lambda$| = {checks[name]['w1']:.3f})")
        ax.set_yscale("log")
        ax.set_ylim(1e-2, None)
        # The raw quadrature nodes (the estimate itself), as a rug at the bottom: the
        # library's own rug sits below zero, which a log axis cannot show.
        ax.plot(d.nodes, np.full(d.nodes.size, 0.03), "|", color=spectra.plot.COLORS["nodes"],
                markersize=7, alpha=0.6, transform=ax.get_xaxis_transform(),
                label=f"SLQ nodes ({d.nodes.size})")
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle(f"Loss curvature of a tanh MLP on digits ({P} parameters, {N} images)")
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "hessian_density.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
