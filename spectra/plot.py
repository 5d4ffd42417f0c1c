"""Plots of spectral results (matplotlib, imported only when a plot is drawn).

Plot functions take result objects; estimators never plot. Every function draws
into ``ax`` when given (else a new figure) and returns the axes.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    den: SpectralDensity | Mapping[str, SpectralDensity],
    ax: Any = None,
    *,
    reference: Any = None,
    nodes: str | None = "rug",
    bins: Any = "auto",
    label: str | None = None,
    color: str | None = None,
    band: bool = True,
    title: str | None = None,
    yscale: str = "linear",
    layout: str = "panels",
) -> Any:
    """Draw a spectral density estimate, or one per layer.

    Parameters
    ----------
    den : SpectralDensity or mapping of name to SpectralDensity
        One estimate, or a per-layer result such as
        ``hessian.density(..., per_layer=True)`` (a dict keyed by module name).
    ax : matplotlib Axes or sequence of Axes, optional
        Where to draw: one Axes for one density (or ``layout="ridge"``), at least one
        Axes per layer for ``layout="panels"``; a new figure otherwise.
    reference : array_like or mapping, optional
        Reference eigenvalues (per layer: a mapping with the same keys), drawn as a
        normalised histogram behind the curve.
    nodes : {"rug", "stems", None}
        Show the raw quadrature nodes: a rug along the axis, or stems whose heights
        are the weights (on a secondary axis), or not at all. Deflated eigenvalues
        (``den.deflated``) are drawn once each, as triangles, and left out of the rug.
    bins : int, sequence or str
        Histogram bins of the reference (numpy's rules).
    label : str, optional
        Legend label of the curve (default: the method and product count).
    color : str, optional
        Curve colour.
    band : bool
        Shade ``rho +- 2 stderr`` where the estimate carries a pointwise error.
    title : str, optional
        Axes title (the figure's title for several panels).
    yscale : {"linear", "log"}
        ``"log"`` shows the density on a log axis (floored at ``1e-6`` of its maximum),
        so that outliers of mass ``1/n`` stay visible next to the bulk.
    layout : {"panels", "ridge"}
        Per-layer results only: small multiples (one panel per layer, shared ``x``)
        or a ridge plot (one axes, each layer's curve scaled to its maximum and offset).

    Returns
    -------
    matplotlib Axes, or an ndarray of Axes (one per layer) for ``layout="panels"``
    """
    check_choice(nodes, "nodes", ("rug", "stems", None))
    check_choice(yscale, "yscale", ("linear", "log"))
    check_choice(layout, "layout", ("panels", "ridge"))
    if isinstance(den, Mapping):
        return _per_layer(den, ax, reference=reference, nodes=nodes, bins=bins, color=color,
                          band=band, title=title, yscale=yscale, layout=layout)
    if not isinstance(den, SpectralDensity):
        raise TypeError(f"den must be a SpectralDensity or a mapping of layer names to "
                        f"SpectralDensity (a per-layer result), got {type(den).__name__}")
    ax = _axes(ax)
    _draw(ax, den, reference=reference, nodes=nodes, bins=bins, label=label, color=color,
          band=band, yscale=yscale)
    style_axes(ax)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _draw(ax: Any, den: SpectralDensity, *, reference: Any, nodes: str | None, bins: Any,
          label: str | None, color: str | None, band: bool, yscale: str) -> None:
    """One density into ``ax``: reference histogram, band, curve, nodes, deflated ones."""
    color = color or COLORS["estimate"]
    log = yscale == "log"
    if reference is not None:
        ref = np.asarray(reference, dtype=float).ravel()
        ax.hist(ref, bins=bins, density=True, color=COLORS["reference"], alpha=0.45,
                label=f"reference ({ref.size} eigenvalues)", log=log)
    floor = 1e-6 * float(np.max(den.rho)) if log else 0.0
    if band and den.stderr is not None:
        lo = np.clip(den.rho - 2 * den.stderr, floor, None)
        ax.fill_between(den.x, lo, den.rho + 2 * den.stderr, color=COLORS["band"], alpha=0.35,
                        linewidth=0, label="$\\pm 2$ s.e. across probes")
    if label is None:
        label = f"{den.method.upper()} ({den.num_matvecs} products)"
    ax.plot(den.x, np.maximum(den.rho, floor) if log else den.rho, color=color,
            linewidth=1.6, label=label)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(floor, None)
    c = den.deflated.size  # deflated eigenvalues come first in ``nodes``, once each
    free, free_w = den.nodes[c:], den.weights[c:]
    # rug and markers in axes coordinates: the same on linear and log axes
    where = ax.get_xaxis_transform()
    if nodes == "rug":
        if not log:
            ax.set_ylim(-0.06 * ax.get_ylim()[1], None)
        ax.plot(free, np.full(free.size, 0.012), "|", color=COLORS["nodes"], markersize=6,
                alpha=0.5, transform=where, label="quadrature nodes")
    elif nodes == "stems":
        ax2 = ax.twinx()
        ax2.vlines(free, 0, free_w, color=COLORS["nodes"], alpha=0.5, linewidth=0.8)
        ax2.set_ylabel("quadrature weight", color=COLORS["nodes"])
        ax2.set_ylim(0, None)
    if den.deflated.size and nodes is not None:
        ax.plot(den.deflated, np.full(den.deflated.size, 0.05), "v", color=COLORS["truth"],
                markersize=5, transform=where,
                label=f"deflated eigenvalues ({den.deflated.size}, weight 1/n each)")


def _per_layer(dens: Mapping[str, SpectralDensity], ax: Any, *, reference: Any,
               nodes: str | None, bins: Any, color: str | None, band: bool,
               title: str | None, yscale: str, layout: str) -> Any:
    """Small multiples (one panel per layer, shared x) or a ridge plot."""
    names = list(dens)
    if not names:
        raise ValueError("the per-layer result is empty: nothing to draw")
    for name in names:
        if not isinstance(dens[name], SpectralDensity):
            raise TypeError(f"layer {name!r} holds a {type(dens[name]).__name__}, not a "
                            "SpectralDensity")
    if reference is not None and not isinstance(reference, Mapping):
        raise TypeError("reference of a per-layer result must be a mapping of layer names "
                        "to eigenvalues")
    refs = reference or {}
    if layout == "ridge":
        if yscale == "log":
            raise ValueError("a ridge plot has no log scale; use layout='panels' with "
                             "yscale='log'")
        return _ridge(dens, _axes(ax, (6.4, 1.0 + 0.6 * len(names))), color, title)
    axes = _panels(len(names), ax)
    for i, (a, name) in enumerate(zip(axes, names, strict=False)):
        _draw(a, dens[name], reference=refs.get(name), nodes=nodes, bins=bins, label=None,
              color=color, band=band, yscale=yscale)
        style_axes(a, xlabel="eigenvalue $\\lambda$" if i == len(names) - 1 else "",
                   ylabel="density")
        a.set_title(name, fontsize="small", loc="left")
        if i == 0:  # one legend: the panels share their artists
            a.legend(frameon=False, fontsize="x-small")
    if title:
        axes[0].figure.suptitle(title)
    return axes


def _panels(count: int, ax: Any) -> np.ndarray:
    if ax is not None:
        axes = np.ravel(np.asarray(ax, dtype=object))
        if axes.size < count:
            raise ValueError(f"ax holds {axes.size} Axes for {count} layers")
        return axes[:count]
    import matplotlib.pyplot as plt

    _, axs = plt.subplots(count, 1, sharex=True, figsize=(6.4, 0.4 + 1.9 * count), dpi=150,
                          layout="constrained", squeeze=False)
    return axs[:, 0]


def _ridge(dens: Mapping[str, SpectralDensity], ax: Any, color: str | None,
           title: str | None) -> Any:
    names = list(dens)
    for i, name in enumerate(names):
        d = dens[name]
        off = len(names) - 1 - i
        y = off + 0.9 * d.rho / float(np.max(d.rho))
        ax.fill_between(d.x, off, y, color=COLORS["band"], alpha=0.5, linewidth=0)
        ax.plot(d.x, y, color=color or COLORS["estimate"], linewidth=1.2)
        if d.deflated.size:  # outliers of mass 1/n are invisible on a linear ridge: mark them
            ax.plot(d.deflated, np.full(d.deflated.size, off + 0.08), "v",
                    color=COLORS["truth"], markersize=4)
    ax.set_yticks(np.arange(len(names))[::-1], names)
    style_axes(ax, ylabel="")
    if title:
        ax.set_title(title)
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
