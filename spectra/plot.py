"""Plots of spectral results (matplotlib, imported only when a plot is drawn).

Plot functions take result objects; estimators never plot. Every function draws
into ``ax`` when given (else a new figure) and returns the axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .results import SpectralDensity

__all__ = ["COLORS", "density", "style_axes"]

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
    if nodes not in ("rug", "stems", None):
        raise ValueError(f"nodes must be 'rug', 'stems' or None, got {nodes!r}")
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
