"""Figures of the command line and of the main job (matplotlib, imported inside each function).

Every function takes result objects, draws a new 150-dpi figure in the project's style
(:func:`spectra.plot.style_axes`, :data:`spectra.plot.COLORS`) and returns it; the
caller saves it. Nothing here computes an estimate. Decompressions are drawn by
:func:`freedecomp.plot.decompression`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra.plot import COLORS, style_axes
from spectra.plot import density as plot_density
from spectra.results import EigResult, Estimate, SpectralDensity

__all__ = [
    "cdf_panel",
    "density_figure",
    "eigs_figure",
    "hessian_figure",
    "kernel_figure",
    "log_density_panel",
    "save",
    "trace_figure",
]

def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.0, **kw: Any) -> Any:
    """A free-standing Figure (no pyplot state, no GUI backend) with ``ncols`` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kw)
    return fig, list(axes[0])


def save(fig: Any, path: Any) -> None:
    """Write ``fig`` as a 150-dpi PNG."""
    fig.savefig(path, dpi=150)


def cdf_panel(ax: Any, den: SpectralDensity, reference: Any = None, *,
              label: str | None = None, logx: bool = False) -> Any:
    r"""Cumulative distribution :math:`F(t) = \sum_{\theta_j \le t} w_j` of the raw measure.

    The estimate is drawn as the step function of its quadrature nodes and weights (no
    smoothing), the reference as the empirical distribution of its eigenvalues.
    """
    order = np.argsort(den.nodes)
    xs, F = den.nodes[order], np.cumsum(den.weights[order])
    if reference is not None:
        ref = np.sort(np.asarray(reference, dtype=float).ravel())
        ax.step(ref, np.arange(1, ref.size + 1) / ref.size, where="post",
                color=COLORS["truth"], linewidth=2.4, alpha=0.35,
                label=f"exact ({ref.size:,} eigenvalues)")
    ax.step(np.concatenate([[xs[0]], xs]), np.concatenate([[0.0], F]), where="post",
            color=COLORS["estimate"], linewidth=1.1,
            label=label or f"{den.method.upper()} quadrature ({den.nodes.size} nodes)")
    if logx:
        ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    style_axes(ax, ylabel="fraction of eigenvalues $\\leq \\lambda$")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    return ax


def density_figure(den: SpectralDensity, reference: Any = None, *, title: str = "",
                   bins: Any = None) -> Any:
    """Smoothed density with the quadrature nodes (left) and the raw measure's CDF (right).

    ``bins`` of the reference histogram default to ``2 sqrt(n)`` clipped to ``[20, 120]``.
    """
    if bins is None and reference is not None:
        bins = int(np.clip(2 * np.sqrt(np.size(reference)), 20, 120))

    fig, (a, b) = _figure(2, width=10.5, height=4.0, width_ratios=[1.5, 1.0])
    plot_density(den, a, reference=reference, bins=bins)
    a.set_ylabel("density (per unit $\\lambda$)")
    cdf_panel(b, den, reference)
    if title:
        fig.suptitle(title)
    return fig


def log_density_panel(ax: Any, den: SpectralDensity, reference: Any = None, *,
                      bins: int = 160, label: str | None = None, floor: float = 1e-3) -> Any:
    """Density on a logarithmic axis (for spectra with a spike and far outliers).

    The reference histogram and the smoothed estimate share the bins' range; the
    quadrature nodes are drawn as a rug below the axis (axes coordinates, so that the
    logarithmic scale keeps them visible).
    """
    import matplotlib.transforms as mtransforms

    lo = min(den.bounds[0], float(np.min(reference)) if reference is not None else np.inf)
    hi = max(den.bounds[1], float(np.max(reference)) if reference is not None else -np.inf)
    pad = 0.03 * (hi - lo)
    edges = np.linspace(lo - pad, hi + pad, bins + 1)
    if reference is not None:
        ref = np.asarray(reference, dtype=float).ravel()
        ax.hist(ref, bins=edges, density=True, color=COLORS["reference"], alpha=0.5,
                label=f"exact eigenvalues ({ref.size:,}), histogram")
    rho = np.where(den.rho > 0, den.rho, np.nan)
    ax.plot(den.x, rho, color=COLORS["estimate"], linewidth=1.4,
            label=label or f"{den.method.upper()} ({den.num_matvecs} products), smoothed")
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(den.nodes, np.full(den.nodes.size, 0.02), "|", transform=trans,
            color=COLORS["nodes"], markersize=7, alpha=0.45, label="quadrature nodes")
    ax.set_yscale("log")
    top = np.nanmax(rho)
    ax.set_ylim(floor * top * 1e-2, 3 * top)
    ax.set_xlim(edges[0], edges[-1])
    style_axes(ax, ylabel="density (per unit $\\lambda$, log scale)")
    ax.legend(frameon=False, fontsize="small")
    return ax


def eigs_figure(res: EigResult, tol: float, exact: Any = None, *, title: str = "") -> Any:
    r"""Computed eigenvalues by rank (left) and their residuals against the tolerance (right).

    The target on the right is :math:`\mathrm{tol}\,|\theta_i|`, the relative part of
    the stopping test of :func:`spectra.eigsh`.
    """
    fig, (a, b) = _figure(2, width=10.0, height=3.8)
    i = np.arange(1, res.eigenvalues.size + 1)
    if exact is not None:
        a.plot(i, exact, "o", markersize=9, markerfacecolor="none",
               markeredgecolor=COLORS["truth"], label="exact (dense eigvalsh)")
    a.plot(i, res.eigenvalues, ".", markersize=8, color=COLORS["estimate"],
           label=f"eigsh ({res.num_matvecs} products)")
    a.set_xticks(i)
    style_axes(a, xlabel="index $i$", ylabel="eigenvalue $\\lambda_i$")
    a.legend(frameon=False, fontsize="small")
    floor = np.finfo(float).tiny
    b.semilogy(i, np.maximum(res.residual_norms, floor), "s", color=COLORS["estimate"],
               markersize=5, label="$\\|A x_i - \\lambda_i x_i\\|$")
    b.semilogy(i, np.maximum(tol * np.abs(res.eigenvalues), floor), "_", markersize=18,
               color=COLORS["nodes"], label=f"target tol $|\\lambda_i|$ (tol = {tol:g})")
    if exact is not None:
        err = np.abs(np.asarray(exact) - res.eigenvalues)
        b.semilogy(i, np.maximum(err, floor), "o", markerfacecolor="none",
                   color=COLORS["truth"], label="$|\\lambda_i - \\lambda_i^{exact}|$")
    b.set_xticks(i)
    style_axes(b, xlabel="index $i$", ylabel="residual norm")
    b.legend(frameon=False, fontsize="small")
    status = "converged" if res.converged else "NOT converged"
    fig.suptitle(f"{title}  ({status})" if title else status)
    return fig


def trace_figure(est: Estimate, exact: float | None = None, *, title: str = "") -> Any:
    """The per-probe (or leave-one-out) estimates behind a trace estimate, with its interval."""
    fig, (a,) = _figure(1, width=6.4, height=3.8)
    lo, hi = est.interval(2.0)
    a.axvspan(lo, hi, color=COLORS["band"], alpha=0.35, linewidth=0,
              label="estimate $\\pm$ 2 s.e.")
    if est.samples is not None and np.size(est.samples) > 1:
        s = np.asarray(est.samples, dtype=float)
        a.hist(s, bins=max(8, min(40, s.size // 2)), color=COLORS["reference"], alpha=0.6,
               label=f"{s.size} per-probe estimates")
    a.axvline(float(est.value), color=COLORS["estimate"], linewidth=1.8,
              label=f"{est.method}: {float(est.value):.6g} ({est.num_matvecs} products)")
    if exact is not None:
        a.axvline(exact, color=COLORS["truth"], linestyle="--", linewidth=1.2,
                  label=f"exact: {exact:.6g}")
    style_axes(a, xlabel="trace estimate", ylabel="number of probes")
    a.legend(frameon=False, fontsize="small")
    if title:
        a.set_title(title)
    return fig


def hessian_figure(den: SpectralDensity, top: EigResult, exact: np.ndarray, *,
                   title: str = "", ranks: int = 20) -> Any:
    """A curvature spectrum: log-scale density (left) and the largest eigenvalues (right).

    Left: the exact eigenvalues' histogram, the SLQ estimate and its nodes, and the
    computed top eigenvalues as ticks. Right: the ``ranks`` largest exact eigenvalues by
    rank with the Lanczos estimates of the first ``k`` on top.
    """
    fig, (a, b) = _figure(2, width=11.0, height=4.2, width_ratios=[1.5, 1.0])
    log_density_panel(a, den, exact)
    a.plot(top.eigenvalues, np.full(top.eigenvalues.size, 0.93), "v",
           transform=a.get_xaxis_transform(), color=COLORS["estimate"], markersize=6,
           label=f"top {top.eigenvalues.size} (Lanczos)")
    a.legend(frameon=False, fontsize="small")
    lam = np.sort(np.asarray(exact, dtype=float))[::-1][:ranks]
    i = np.arange(1, lam.size + 1)
    b.plot(i, lam, "o", markersize=7, markerfacecolor="none", markeredgecolor=COLORS["truth"],
           label="exact (dense eigvalsh)")
    j = np.arange(1, top.eigenvalues.size + 1)
    b.plot(j, top.eigenvalues, ".", markersize=8, color=COLORS["estimate"],
           label=f"thick-restart Lanczos ({top.num_matvecs} products)")
    if lam[-1] > 0:
        b.set_yscale("log")
    b.set_xticks([1, 5, 10, 15, 20][: 1 + ranks // 5])
    style_axes(b, xlabel="rank $i$", ylabel="eigenvalue $\\lambda_i$"
               + (" (log scale)" if lam[-1] > 0 else ""))
    b.legend(frameon=False, fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def kernel_figure(exact: np.ndarray, estimates: dict[str, Any], *, title: str = "") -> Any:
    r"""A spectrum spread over decades: counting function (left) and CDF (right), log axes.

    Left: :math:`\#\{\lambda_i \geq \lambda\}` on log-log axes (the large eigenvalues);
    right: the fraction of eigenvalues :math:`\leq \lambda` on a log axis (the bulk near
    0). The layout of ``examples/kernel_spectrum.py``.

    Parameters
    ----------
    exact : ndarray
        All eigenvalues (the reference).
    estimates : dict
        Label -> a :class:`SpectralDensity` or anything with ``cdf(x)`` (a
        decompression), or an array of eigenvalues.
    title : str
    """
    lam = np.sort(np.asarray(exact, dtype=float))
    N, top = lam.size, float(lam[-1])
    x = np.geomspace(1e-8 * top, 1.5 * top, 600)
    curves = [("exact (dense eigvalsh)", np.searchsorted(lam, x, side="right") / N,
               COLORS["truth"], "-", 2.2)]
    styles = [(COLORS["estimate"], "--"), (COLORS["nodes"], "-."), (COLORS["reference"], ":")]
    for (label, est), (color, ls) in zip(estimates.items(), styles, strict=False):
        if hasattr(est, "cdf"):
            F = np.asarray(est.cdf(x))
        else:
            F = np.searchsorted(np.sort(np.asarray(est, dtype=float)), x, side="right") / N
        curves.append((label, F, color, ls, 1.6))
    fig, (a, b) = _figure(2, width=12.0, height=4.4)
    for label, F, color, ls, lw in curves:
        a.loglog(x, np.maximum(N * (1.0 - F), 0.5), ls, color=color, linewidth=lw, label=label)
        b.semilogx(x, F, ls, color=color, linewidth=lw, label=label)
    a.set_ylim(0.5, 1.5 * N)
    style_axes(a, xlabel="eigenvalue $\\lambda$ (log scale)",
               ylabel="eigenvalues $\\geq \\lambda$ (count, log scale)")
    style_axes(b, xlabel="eigenvalue $\\lambda$ (log scale)",
               ylabel="fraction of eigenvalues $\\leq \\lambda$")
    a.set_title("large eigenvalues (counting function)", fontsize="medium")
    b.set_title("the bulk near 0 (distribution function)", fontsize="medium")
    b.legend(frameon=False, fontsize="small", loc="lower right")
    if title:
        fig.suptitle(title)
    return fig
