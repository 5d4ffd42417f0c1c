"""Pictures of a decompression (matplotlib is imported inside the function)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["decompression"]


def decompression(result: Any, *, sample: Any = None, reference: Any = None,
                  eigenvalues: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """Draw a :class:`~freedecomp.result.Decompression`.

    Left: the sample histogram, the estimated density at ``N`` (with bands when
    available), the reference law and/or a histogram of true eigenvalues. Right
    (when the result holds a flow of several sizes): the density at each size.

    Parameters
    ----------
    result : Decompression
    sample : array_like, optional
        Sample eigenvalues to histogram.
    reference : law, optional
        An object with ``density(x)`` and ``atoms`` (e.g. a :mod:`freedecomp.laws` law).
    eigenvalues : array_like, optional
        True eigenvalues of the full matrix.
    ax : matplotlib Axes or sequence of two, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    flow = result.flow if len(result.flow) > 1 else ()
    if ax is None:
        fig, axes = plt.subplots(1, 2 if flow else 1, figsize=(11 if flow else 6.5, 4.2),
                                 dpi=150, squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(ax))
        fig = axes[0].figure
    a = axes[0]
    d = result.diagnostics
    if sample is not None:
        smp = np.asarray(sample, float)
        a.hist(smp, bins=max(10, int(np.sqrt(smp.size))), density=True, color="0.85",
               label=f"sample, n = {result.sample_size}")
    if eigenvalues is not None:
        a.hist(np.asarray(eigenvalues, float), bins=120, density=True, histtype="step",
               color="k", lw=0.8, label=f"true eigenvalues, N = {result.size}")
    if reference is not None:
        a.plot(result.x, reference.density(result.x), "k--", lw=1.2, zorder=4,
               label="reference law")
    if result.bands is not None:
        a.fill_between(result.x, result.bands[0], result.bands[1], color="C0", alpha=0.25,
                       lw=0, label="band over submatrices")
    a.plot(result.x, result.rho, color="C0", lw=1.6,
           label=f"decompressed, N = {result.size} ({d.get('model', '?')})")
    for x0, w in result.atoms:
        a.axvline(x0, color="C3", lw=1.0, ls=":", label=f"atom {w:.2f} at {x0:.3g}")
    a.set_xlabel("eigenvalue")
    a.set_ylabel("density")
    a.set_title(title or f"free decompression, alpha = {result.alpha:g}")
    a.legend(fontsize=7, frameon=False)
    if d.get("warnings"):
        a.text(0.01, 0.98, "warning: " + d["warnings"][0][:70] + "...",
               transform=a.transAxes, fontsize=6, va="top", color="C3")
    if flow and len(axes) > 1:
        b = axes[1]
        cmap = plt.get_cmap("viridis")
        for i, r in enumerate(flow):
            b.plot(r.x, r.rho, color=cmap(i / max(len(flow) - 1, 1)), lw=1.2,
                   label=f"N = {r.size}")
        b.set_xlabel("eigenvalue")
        b.set_ylabel("density")
        b.set_title("density flow over sizes")
        b.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
