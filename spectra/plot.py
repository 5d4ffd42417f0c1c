"""Plots of spectral results (matplotlib, imported only when a plot is drawn).

Plot functions take result objects; estimators never plot. Every function draws
into ``ax`` when given (else a new figure) and returns the axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .results import SpectralDensity
from .validation import check_choice

__all__ = ["COLORS", "density", "hankel_singular_values", "style_axes"]

#: Colours used consistently across the project's figures.
COLORS = {
    "estimate": "#1f4e9c",
    "reference": "#9a9a9a",
    "nodes": "#d1495b",
    "truth": "#222222",
    "band": "#8fb3e8",
}


def _axes(ax: Any, figsize: tuple[float, float] = (6.4, 4.0)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, dpi=150, layout="constrained")
    return ax


def style_axes(ax: Any, *, xlabel: str = "eigenvalue $\\lambda$", ylabel: str = "density") -> Any:
    """Apply the project's axis style: labels, light grid, no top/right spines."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def density(
    den: SpectralDensity,
    ax: Any = None,
    *,
    reference: Any = None,
    nodes: str | None = "rug",
    bins: Any = "auto",
    label: str | None = None,
    color: str | None = None,
    band: bool = True,
    title: str | None = None,
) -> Any:
    """Draw a spectral density estimate.

    Parameters
    ----------
    den : SpectralDensity
        The estimate.
    ax : matplotlib Axes, optional
        Where to draw; a new 6.4 x 4 in figure at 150 dpi otherwise.
    reference : array_like, optional
        Reference eigenvalues, drawn as a normalised histogram behind the curve.
    nodes : {"rug", "stems", None}
        Show the raw quadrature nodes: a rug along the axis, or stems whose heights
        are the weights (on a secondary axis), or not at all.
    bins : int, sequence or str
        Histogram bins of the reference (numpy's rules).
    label : str, optional
        Legend label of the curve (default: the method and product count).
    color : str, optional
        Curve colour.
    band : bool
        Shade ``rho +- 2 stderr`` where the estimate carries a pointwise error.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(den, SpectralDensity):
        raise TypeError(f"den must be a SpectralDensity, got {type(den).__name__}")
    check_choice(nodes, "nodes", ("rug", "stems", None))
    ax = _axes(ax)
    color = color or COLORS["estimate"]
    if reference is not None:
        ref = np.asarray(reference, dtype=float).ravel()
        ax.hist(ref, bins=bins, density=True, color=COLORS["reference"], alpha=0.45,
                label=f"reference ({ref.size} eigenvalues)")
    if band and den.stderr is not None:
        lo = np.clip(den.rho - 2 * den.stderr, 0, None)
        ax.fill_between(den.x, lo, den.rho + 2 * den.stderr, color=COLORS["band"], alpha=0.35,
                        linewidth=0, label="$\\pm 2$ s.e. across probes")
    if label is None:
        label = f"{den.method.upper()} ({den.num_matvecs} products)"
    ax.plot(den.x, den.rho, color=color, linewidth=1.6, label=label)
    if nodes == "rug":
        ymax = ax.get_ylim()[1]
        ax.plot(den.nodes, np.full(den.nodes.size, -0.02 * ymax), "|", color=COLORS["nodes"],
                markersize=6, alpha=0.5, label="quadrature nodes")
        ax.set_ylim(-0.05 * ymax, ymax)
    elif nodes == "stems":
        ax2 = ax.twinx()
        ax2.vlines(den.nodes, 0, den.weights, color=COLORS["nodes"], alpha=0.5, linewidth=0.8)
        ax2.set_ylabel("quadrature weight", color=COLORS["nodes"])
        ax2.set_ylim(0, None)
    style_axes(ax)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax


def hankel_singular_values(
    result: Any,
    ax: Any = None,
    *,
    reference: Any = None,
    reference_label: str = "reference",
    bound: bool = True,
    label: str | None = None,
    color: str | None = None,
    title: str | None = None,
) -> Any:
    r"""Draw Hankel singular values (log scale) with the balanced-truncation bound.

    The values :math:`\sigma_i` are drawn at :math:`i = 1, 2, \dots`; the bound
    :math:`2 \sum_{i > r} \sigma_i` on the :math:`H_\infty` error of a balanced
    truncation to order :math:`r` at :math:`r = 1, 2, \dots` (zero bounds are left out
    of the log axis).

    Parameters
    ----------
    result : spectra.gramians.HankelResult
        From :func:`spectra.hankel_singular_values`.
    ax : matplotlib Axes, optional
        Where to draw; a new 6.4 x 4 in figure at 150 dpi otherwise.
    reference : array_like, optional
        Reference values (e.g. from a dense solve), drawn as open markers.
    reference_label : str
        Legend label of the reference (the count of values is appended).
    bound : bool
        Draw the truncation bound.
    label : str, optional
        Legend label of the values (default: the Gramian methods and costs).
    color : str, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    from .gramians import HankelResult

    if not isinstance(result, HankelResult):
        raise TypeError(f"result must be a HankelResult, got {type(result).__name__}")
    ax = _axes(ax)
    color = color or COLORS["estimate"]
    s = result.values
    idx = np.arange(1, s.size + 1)
    if reference is not None:
        ref = np.asarray(reference, dtype=float).ravel()
        ref_i = np.arange(1, ref.size + 1)
        ax.plot(ref_i[ref > 0], ref[ref > 0], "o", markersize=7, markerfacecolor="none",
                color=COLORS["reference"], label=f"{reference_label} ({ref.size} values)")
    if label is None:
        c, o = result.controllability, result.observability
        label = (f"$\\sigma_i$ ({c.method}: {c.num_matvecs + o.num_matvecs} products, "
                 f"{c.num_solves + o.num_solves} solves)")
    ax.plot(idx[s > 0], s[s > 0], "o-", markersize=3.5, linewidth=1.0, color=color,
            label=label)
    if bound and s.size > 1:
        b = result.truncation_bounds[1:]
        ax.plot(idx[b > 0], b[b > 0], "v--", markersize=3.5, linewidth=1.2, alpha=0.85,
                color=COLORS["nodes"],
                label="$2\\sum_{i>r}\\sigma_i$ (bound on $\\|G - G_r\\|_\\infty$)")
    from matplotlib.ticker import MaxNLocator

    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    style_axes(ax, xlabel="index $i$ / reduced order $r$",
               ylabel="Hankel singular value / error bound")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax
