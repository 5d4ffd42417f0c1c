r"""Evaluating decompressed laws on grids, and scoring them against known spectra.

:func:`evaluate_model` solves a fitted :class:`~freedecomp.models.CurveModel` along the
characteristics of the flow (:doc:`/theory/free_decompression`) on an adaptive grid;
:func:`evaluate_law` does the same for a law with a density (the deformed
Marchenko-Pastur laws); :func:`discrete_evaluation` wraps a discrete measure (the
Nystrom-pad and plain-block baselines). :func:`validation_error` is the score used by
the ``n/2 -> n`` validation: it measures what users read off a result -- the
Wasserstein-1 distance, the top eigenvalue, the mean (trace) and, for positive
semi-definite spectra, the small end in a logarithmic variable -- so that one outlier
carrying most of the trace cannot hide behind a small W1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra.distances import wasserstein1

from . import models as _m
from .result import GridEvaluation

__all__ = ["discrete_evaluation", "evaluate_law", "evaluate_model", "validation_error", "w1"]

#: weights of the validation score: W1/sd + TOP * top + MEAN * mean + SMALL * small end
TOP, MEAN, SMALL = 0.25, 1.0, 0.25
#: floor of the logarithmic small-end term, relative to the largest eigenvalue
LOG_FLOOR = 1e-4


def evaluate_model(model: _m.CurveModel, alpha: float, *, num: int = 2001, grid: Any = None
                   ) -> GridEvaluation:
    """Decompressed density of ``model`` on an adaptive grid (or the given one).

    A coarse pass over ``mean +- L sd`` (``L`` doubled until the mass is captured)
    locates the support; the fine grid spans it with a small margin. The density is
    ``max(Im m, 0)/pi``; non-finite values are set to zero and counted.

    Returns
    -------
    GridEvaluation
        Not normalised: ``mass`` is the mass found on the grid.
    """
    sd = model.scale * np.sqrt(alpha)
    atoms = model.atoms(alpha)
    x = _support_grid(model, alpha, atoms, num) if grid is None else np.asarray(grid, float)
    m, res = model.solve(alpha, x)
    bad = ~np.isfinite(m)
    rho = np.where(bad, 0.0, m.imag) / np.pi
    negative = float(np.trapezoid(np.maximum(-rho, 0.0), x))
    rho = _drop_atoms(x, np.maximum(rho, 0.0), atoms, sd)
    mass = float(np.trapezoid(rho, x)) + sum(w for _, w in atoms)
    return GridEvaluation(x=x, rho=rho, atoms=atoms, mass=mass, negative=negative,
                          residual=float(np.max(np.where(np.isfinite(res), res, 1.0))),
                          nonfinite=int(bad.sum()))


def _support_grid(model: _m.CurveModel, alpha: float, atoms: list, num: int) -> np.ndarray:
    """``num`` points over the support found by a coarse, widening pass."""
    mean = model.shift
    sd = model.scale * np.sqrt(alpha)
    amass = sum(w for _, w in atoms)
    lo, hi = mean - 6 * sd, mean + 6 * sd
    for a, _ in atoms:  # the grid must reach the atoms (an atom at zero far from the bulk)
        lo, hi = min(lo, a - sd), max(hi, a + sd)
    for _ in range(5):
        xc = np.linspace(lo, hi, 300)
        m, _ = model.solve(alpha, xc)
        rc = np.nan_to_num(np.maximum(m.imag, 0.0), nan=0.0, posinf=0.0) / np.pi
        rc = _drop_atoms(xc, rc, atoms, sd)
        mass = float(np.trapezoid(rc, xc)) + amass
        thr = 1e-7 * rc.max() if rc.max() > 0 else 0.0
        if mass > 0.999 and rc[0] <= thr and rc[-1] <= thr:
            break
        lo, hi = mean - 2 * (mean - lo), mean + 2 * (hi - mean)
    pos = np.flatnonzero(rc > 1e-9 * max(rc.max(), 1e-300))
    if pos.size == 0:
        raise ValueError("the decompressed model has no continuous mass")
    h = xc[1] - xc[0]
    return np.linspace(xc[pos[0]] - 2 * h, xc[pos[-1]] + 2 * h, num)


def _drop_atoms(x: np.ndarray, rho: np.ndarray, atoms: list, sd: float) -> np.ndarray:
    for a, _ in atoms:
        rho = np.where(np.abs(x - a) < 1e-6 * sd, 0.0, rho)
    return rho


def evaluate_law(law: Any, num: int, grid: Any = None) -> GridEvaluation:
    """Density of a law with ``grid``, ``density`` and ``atoms`` on a grid (not normalised).

    The grid is ``grid``, or ``num`` points over the support located on a coarse grid.
    """
    if grid is None:
        xc, rc = law.grid(400)
        pos = np.flatnonzero(rc > 1e-9 * rc.max())
        h = xc[1] - xc[0]
        x = np.linspace(max(xc[pos[0]] - 2 * h, 0.0 if law.ratio >= 1 else -np.inf),
                        xc[pos[-1]] + 2 * h, num)
    else:
        x = np.asarray(grid, float)
    rho = law.density(x)
    mass = float(np.trapezoid(rho, x)) + sum(m for _, m in law.atoms)
    return GridEvaluation(x=x, rho=rho, atoms=list(law.atoms), mass=mass)


def discrete_evaluation(nodes: np.ndarray, weights: np.ndarray, num: int = 2001,
                        grid: Any = None) -> GridEvaluation:
    """A discrete measure as a :class:`GridEvaluation`: all mass in atoms, ``rho = 0``.

    Equal nodes are merged (their weights added), so an atom at zero padded by the
    Nystrom baseline is one atom.
    """
    nodes = np.asarray(nodes, float)
    u, inv = np.unique(nodes, return_inverse=True)
    w = np.bincount(inv, weights=np.asarray(weights, float))
    if grid is None:
        lo, hi = float(u[0]), float(u[-1])
        pad = 0.01 * (hi - lo) + 1e-300
        x = np.linspace(lo - pad, hi + pad, num)
    else:
        x = np.asarray(grid, float)
    atoms = [(float(a), float(m)) for a, m in zip(u, w, strict=True) if m > 0]
    return GridEvaluation(x=x, rho=np.zeros_like(x), atoms=atoms, mass=float(w.sum()))


def w1(ev: GridEvaluation, reference: Any, reference_weights: Any = None) -> float:
    """Wasserstein-1 distance between a (normalised) evaluation and a reference."""
    nodes, weights = ev.measure()
    return wasserstein1(nodes, reference, weights, reference_weights)


def validation_error(ev: GridEvaluation, target: np.ndarray, psd: bool) -> dict[str, float]:
    r"""Score of a normalised estimate against the known spectrum ``target``.

    .. math::

        e = \frac{W_1}{\sigma} + T\,\frac{|\hat\lambda_{\max} - \lambda_{\max}|}
        {\max(\lambda_{\max} - \mu, \sigma)} + M\,\frac{|\hat\mu - \mu|}{\sigma}
        + S\,\frac{W_1(\log_{10}\max(\hat x, f), \log_{10}\max(x, f))}{4}

    with :math:`\sigma, \mu` the target's sd and mean, ``f = LOG_FLOOR * max``, the last
    (small-end) term only for positive semi-definite spectra, and weights ``TOP``,
    ``MEAN``, ``SMALL``.

    Returns
    -------
    dict
        ``total`` and its parts ``w1``, ``top``, ``mean``, ``small`` (all in the units
        above).
    """
    nodes, weights = ev.measure()
    sd = float(target.std())
    mu, top = float(target.mean()), float(target.max())
    out = {"w1": wasserstein1(nodes, target, weights) / sd}
    keep = weights > 1e-12
    out["top"] = abs(float(nodes[keep].max()) - top) / max(top - mu, sd)
    out["mean"] = abs(float(np.sum(weights * nodes)) - mu) / sd
    out["small"] = 0.0
    if psd and top > 0:
        f = LOG_FLOOR * top
        out["small"] = wasserstein1(np.log10(np.maximum(nodes, f)),
                                    np.log10(np.maximum(target, f)), weights) / 4.0
    out["total"] = out["w1"] + TOP * out["top"] + MEAN * out["mean"] + SMALL * out["small"]
    return out
