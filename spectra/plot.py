"""Plots of spectral results (matplotlib, imported only when a plot is drawn).

Plot functions take result objects; estimators never plot. Every function draws
into ``ax`` when given (else a new figure) and returns the axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .results import SpectralDensity

__all__ = ["COLORS", "density", "hankel_singular_values", "spectra_over_training", "style_axes"]

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


def spectra_over_training(
    history: Any,
    ax: Any = None,
    *,
    floor: float | None = None,
    cmap: str = "magma_r",
    title: str | None = None,
    ylim: tuple[float, float] | None = None,
) -> tuple[Any, Any]:
    r"""Draw spectral densities over training as a heat map, with the top eigenvalues.

    The heat map has the training step on the horizontal axis, the eigenvalue on the
    vertical one and the density :math:`\rho_t(\lambda)` as a logarithmic colour.
    Curvature spectra of networks are dominated by a spike of near-zero eigenvalues,
    orders of magnitude above the bulk and the outliers; on a log scale all three stay
    visible. Densities below ``floor`` are left white. The top eigenvalue is overlaid on
    the heat map, and the top ``k`` are drawn in a panel below it that shares the step
    axis.

    Parameters
    ----------
    history : object or mapping
        Anything with ``steps`` (``R`` increasing), ``grid`` (``G`` increasing
        eigenvalues), ``densities`` (``R x G``, non-negative) and ``top_eigenvalues``
        (``R`` or ``R x k``) attributes, such as :class:`hessian.SpectrumHistory`, or a
        mapping with those keys. An optional ``kind`` attribute names the title.
    ax : matplotlib Axes or pair of Axes, optional
        One Axes: the heat map only (with the overlaid curve and a colorbar beside it);
        two: heat map and the top-eigenvalue panel. Default: a new 6.4 x 5.6 in figure
        at 150 dpi with both panels.
    floor : float, optional
        Smallest density coloured. Default: a tenth of the smallest density found at a
        record's top eigenvalue (so that the outlier is coloured in every record),
        clipped to ``[1e-8, 1e-2]`` times the largest density.
    cmap : str
        Matplotlib colour map (light for low densities suits the white floor).
    title : str, optional
        Default: "<kind> spectrum over training".
    ylim : tuple of float, optional
        Eigenvalue range shown (default: the grid).

    Returns
    -------
    heat : matplotlib Axes
        The heat map.
    side : matplotlib Axes or None
        The top-eigenvalue panel (``None`` when a single Axes was given).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    steps, grid, dens, top = _training_arrays(history)
    vmax = float(dens.max())
    if vmax <= 0:
        raise ValueError("the densities are zero everywhere; nothing to draw")
    if floor is None:
        floor = _density_floor(grid, dens, top, vmax)
    elif not (isinstance(floor, (int, float)) and np.isfinite(floor) and 0 < floor < vmax):
        raise ValueError(f"floor must be a positive number below the largest density "
                         f"{vmax:.3g}, got {floor!r}")
    heat, side, cax = _training_axes(ax)
    cm = plt.get_cmap(cmap).with_extremes(bad="white")
    mesh = heat.pcolormesh(steps, grid, np.ma.masked_less(dens.T, floor), shading="nearest",
                           cmap=cm, norm=LogNorm(vmin=floor, vmax=vmax), rasterized=True)
    cb = heat.figure.colorbar(mesh, cax=cax, ax=None if cax is not None else heat)
    cb.set_label("spectral density (log scale)")
    style_axes(heat, xlabel="training step", ylabel="eigenvalue $\\lambda$")
    heat.grid(False)
    if top.shape[1]:
        heat.plot(steps, top[:, 0], color=COLORS["estimate"], linewidth=0.9, marker="o",
                  markersize=2.0, alpha=0.9, label="top eigenvalue")
    if ylim is not None:
        heat.set_ylim(*ylim)
    kind = str(getattr(history, "kind", "") or "")
    name = kind.upper() if kind in ("ggn", "ntk", "jtj") else kind.capitalize()
    heat.set_title(title if title is not None else f"{name} spectrum over training".lstrip())
    if side is None:
        if top.shape[1]:
            heat.legend(frameon=False, fontsize="small", loc="upper right")
        return heat, None
    colors = [COLORS[c] for c in ("estimate", "nodes", "band", "reference", "truth")]
    for j in range(top.shape[1]):
        side.plot(steps, top[:, j], color=colors[j % len(colors)], linewidth=1.4 if j else 1.8,
                  marker="o", markersize=2.5, label=f"$\\lambda_{{{j + 1}}}$")
    style_axes(side, xlabel="training step", ylabel="top eigenvalue")
    if top.shape[1] > 1:
        side.legend(frameon=False, fontsize="small", ncols=min(top.shape[1], 6),
                    loc="lower left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.1)
    if side.get_shared_x_axes().joined(side, heat):
        heat.set_xlabel("")
        heat.tick_params(labelbottom=False)
    return heat, side


def _training_axes(ax: Any) -> tuple[Any, Any, Any]:
    """Heat-map axes, top-eigenvalue axes (or None) and colorbar axes (or None)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, axd = plt.subplot_mosaic([["heat", "cbar"], ["side", "."]], figsize=(6.4, 5.6),
                                    dpi=150, layout="constrained", width_ratios=[1, 0.035],
                                    height_ratios=[2.6, 1])
        axd["side"].sharex(axd["heat"])
        return axd["heat"], axd["side"], axd["cbar"]
    if isinstance(ax, (list, tuple)):
        if len(ax) != 2:
            raise ValueError(f"ax must be one Axes or a pair of them, got {len(ax)}")
        return ax[0], ax[1], None
    return ax, None, None


def _training_arrays(history: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``steps``, ``grid``, ``densities`` and ``(R, k)`` top eigenvalues."""
    from collections.abc import Mapping

    def get(name: str) -> Any:
        if isinstance(history, Mapping) and name in history:
            return history[name]
        if not isinstance(history, Mapping) and hasattr(history, name):
            return getattr(history, name)
        raise TypeError("history must have steps, grid, densities and top_eigenvalues "
                        f"(as attributes or mapping keys); {name!r} is missing")

    steps = np.asarray(get("steps"), dtype=float)
    grid = np.asarray(get("grid"), dtype=float)
    dens = np.asarray(get("densities"), dtype=float)
    top = np.asarray(get("top_eigenvalues"), dtype=float)
    r = steps.size
    if steps.ndim != 1 or r < 1 or np.any(np.diff(steps) <= 0):
        raise ValueError("steps must be a non-empty, strictly increasing 1-d array")
    if grid.ndim != 1 or grid.size < 2 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be a strictly increasing 1-d array of at least 2 points")
    if dens.shape != (r, grid.size):
        raise ValueError(f"densities must have shape (len(steps), len(grid)) = "
                         f"{(r, grid.size)}, got {dens.shape}")
    if not np.all(np.isfinite(dens)) or np.any(dens < 0):
        raise ValueError("densities must be finite and non-negative")
    if top.size % r or top.ndim > 2 or (top.ndim >= 1 and top.shape[0] != r):
        raise ValueError(f"top_eigenvalues must have one row per step ({r}), got shape "
                         f"{top.shape}")
    return steps, grid, dens, top.reshape(r, -1)


def _density_floor(grid: np.ndarray, dens: np.ndarray, top: np.ndarray, vmax: float) -> float:
    """A tenth of the smallest density at a top eigenvalue, within [1e-8, 1e-2] of vmax."""
    if top.shape[1]:
        at = np.array([np.interp(t, grid, d) for t, d in zip(top[:, 0], dens, strict=True)])
        at = at[at > 0]
        if at.size:
            return float(np.clip(0.1 * at.min(), 1e-8 * vmax, 1e-2 * vmax))
    return 1e-6 * vmax


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
