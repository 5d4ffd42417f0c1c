"""Pictures of a decompression (matplotlib is imported inside the functions).

One function, :func:`decompression`, draws every decompression result of the project,
in its style (:func:`spectra.plot.style_axes`, :data:`spectra.plot.COLORS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from spectra.plot import COLORS, style_axes

__all__ = ["decompression"]


def decompression(result: Any, *, sample: Any = None, reference: Any = None,
                  eigenvalues: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """Draw a :class:`~freedecomp.result.Decompression`: densities (left), support edges (right).

    Left: the sample's histogram, the decompressed density at every size of the flow
    (one colour per size, with its band over submatrices when available), the
    reference laws dashed, a histogram of the true eigenvalues at the largest size, the
    atoms of the result and its first warning. Right, when the result holds a flow of
    several sizes: the support edges against the size ``N`` (with two standard errors),
    the reference laws' edges, the true extreme eigenvalues and the sample's at ``n``.

    Parameters
    ----------
    result : Decompression
        A result of :func:`freedecomp.decompress` (one size, or a flow in ``result.flow``).
    sample : array_like, optional
        Eigenvalues of the sample, histogrammed (and their extremes drawn at ``n``).
    reference : law or sequence of laws, optional
        Objects with ``density(x)`` (and ``support`` for the edges), e.g. the laws of
        :mod:`freedecomp.laws`: the law at ``result.size``, or one law per size of the flow.
    eigenvalues : array_like or mapping, optional
        True eigenvalues of the ``result.size`` matrix, or a mapping ``{size: eigenvalues}``
        (the largest size's are histogrammed).
    ax : matplotlib Axes or sequence of two, optional
        Where to draw (a single Axes gets the density panel only); a new free-standing
        150-dpi figure (no pyplot state) otherwise.
    title : str, optional
        Title of the new figure (of the density panel when ``ax`` is given).

    Returns
    -------
    matplotlib.figure.Figure
    """
    flow = tuple(result.flow) or (result,)
    laws = _by_size(flow, reference)
    exact = {} if eigenvalues is None else (
        {int(k): np.asarray(v, float).ravel() for k, v in eigenvalues.items()}
        if isinstance(eigenvalues, Mapping) else
        {result.size: np.asarray(eigenvalues, float).ravel()})
    smp = None if sample is None else np.asarray(sample, float).ravel()
    fig, axes = _new_axes(ax, len(flow) > 1)
    _density_panel(axes[0], result, flow, smp, laws, exact)
    if len(flow) > 1 and len(axes) > 1:
        _edges_panel(axes[1], result, flow, smp, laws, exact)
    if title:
        (fig.suptitle if ax is None else axes[0].set_title)(title)
    return fig


def _by_size(flow: tuple, reference: Any) -> dict[int, Any]:
    """``{size: law}`` from one law (at the last size) or one law per size."""
    if reference is None:
        return {}
    if isinstance(reference, (list, tuple)):
        if len(reference) != len(flow):
            raise ValueError(f"reference needs one law per size of the flow ({len(flow)}), "
                             f"got {len(reference)}")
        return {r.size: law for r, law in zip(flow, reference, strict=True)}
    return {flow[-1].size: reference}


def _new_axes(ax: Any, two: bool) -> tuple[Any, list]:
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        return axes[0].figure, axes
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.2) if two else (6.4, 4.2), dpi=150, layout="constrained")
    axes = fig.subplots(1, 2 if two else 1, squeeze=False,
                        width_ratios=[1.5, 1.0] if two else None)
    return fig, list(axes[0])


def _density_panel(a: Any, result: Any, flow: tuple, smp: np.ndarray | None,
                   laws: dict, exact: dict) -> None:
    import matplotlib

    if smp is not None:
        a.hist(smp, bins=max(10, int(np.sqrt(smp.size))), density=True,
               color=COLORS["reference"], alpha=0.5, label=f"sample, n = {smp.size:,}")
    if exact:
        big = max(exact)
        a.hist(exact[big], bins=int(np.clip(2 * np.sqrt(exact[big].size), 20, 80)),
               density=True, histtype="step", color=COLORS["truth"], linewidth=0.8,
               label=f"exact eigenvalues, N = {big:,}")
    cmap = matplotlib.colormaps["viridis"]
    banded = False
    for j, r in enumerate(flow):
        c = cmap(0.85 * j / max(len(flow) - 1, 1))
        if r.bands is not None:
            a.fill_between(r.x, r.bands[0], r.bands[1], color=c, alpha=0.25, linewidth=0,
                           label=None if banded else "band over submatrices")
            banded = True
        a.plot(r.x, r.rho, color=c, linewidth=1.6, label=f"decompressed, N = {r.size:,}")
        if r.size in laws:
            a.plot(r.x, laws[r.size].density(r.x), color=COLORS["truth"], linestyle="--",
                   linewidth=0.9, label="closed form" if r.size == min(laws) else None)
    for x0, w in result.atoms:
        a.axvline(x0, color=COLORS["nodes"], linewidth=1.0, linestyle=":",
                  label=f"atom {w:.2f} at {x0:.3g}")
    style_axes(a, ylabel="density (per unit $\\lambda$)")
    a.legend(frameon=False, fontsize="small")
    warnings = result.diagnostics.get("warnings")
    if warnings:
        a.text(0.01, 0.98, "warning: " + warnings[0][:70] + "...", transform=a.transAxes,
               fontsize=6, va="top", color=COLORS["nodes"])


def _edges_panel(b: Any, result: Any, flow: tuple, smp: np.ndarray | None, laws: dict,
                 exact: dict) -> None:
    sizes = np.array([r.size for r in flow])
    with_law = [s for s in sizes if s in laws and hasattr(laws[s], "support")]
    for side, marker in ((0, "v"), (1, "^")):
        est = np.array([r.edges[0][0] if side == 0 else r.edges[-1][1] for r in flow])
        err = np.array([r.edge_errors[0][0] if side == 0 else r.edge_errors[-1][1]
                        for r in flow])
        b.errorbar(sizes, est, yerr=2 * err, fmt=marker, color=COLORS["estimate"],
                   markersize=5, capsize=2,
                   label=("lower" if side == 0 else "upper") + " edge, decompressed")
        if with_law:
            b.plot(with_law, [laws[s].support[side] for s in with_law],
                   "-" if len(with_law) > 1 else "_", color=COLORS["truth"], linewidth=0.9,
                   label="closed form" if side == 0 else None)
        if exact:
            ks = sorted(exact)
            b.plot(ks, [exact[k][0 if side == 0 else -1] for k in ks], "x",
                   color=COLORS["nodes"], label="exact extreme eigenvalue"
                   if side == 0 else None)
    n = result.sample_size
    if smp is not None:
        b.plot([n, n], [smp.min(), smp.max()], "o", color=COLORS["reference"],
               label=f"sample extreme eigenvalues, n = {n:,}")
    b.set_xscale("log")
    ticks = np.concatenate([[n], sizes])
    b.set_xticks(ticks, [f"{s:,}" for s in ticks])
    b.minorticks_off()
    style_axes(b, xlabel="matrix size $N$ (log scale)", ylabel="support edge")
    b.legend(frameon=False, fontsize="small")
