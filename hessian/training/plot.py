r"""Plots of training histories: curvature spectra over training.

Matplotlib is imported only when a plot is drawn; the colours and the axis style are
those of :mod:`spectra.plot`. Plot functions take results (a
:class:`hessian.SpectrumHistory`, or plain arrays); the monitor never plots. Reachable
as ``hessian.plot`` too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra.plot import COLORS, style_axes
from spectra.validation import check_float

__all__ = ["spectra_over_training"]


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
    else:
        floor = check_float(floor, "floor", low=0.0, high=vmax, low_open=True, high_open=True,
                            hint=" (a density below the largest one)")
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
