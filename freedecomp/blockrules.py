r"""Quadrature rules of an SLQ block and the Wasserstein-1 bound of what they stand for.

Each probe ``z`` of a stochastic Lanczos run on a block gives the ``k``-point Gauss rule
:math:`G` of its spectral measure :math:`\mu_z` (exact for polynomials of degree
``2k - 1``). For a positive semi-definite block the lower bound 0 of the spectrum gives
a second rule from the same ``k`` steps: the ``(k+1)``-point Gauss-Radau rule
:math:`R` with one node prescribed at 0 (:func:`spectra.gauss.radau_rule`, exact for
degree ``2k``). For every ``f`` whose derivatives alternate in sign on
:math:`[0, \infty)` (``log(x + rho)``, ``x^p`` for ``0 < p < 1``, ``-(x + rho)^{-s}``:
the spectral sums of a kernel or curvature matrix) the two rules bracket
:math:`\int f\,d\mu_z` (Golub & Meurant 2010, Thm. 6.4: the Gauss error has the sign
of :math:`f^{(2k)}`, the Radau error the sign of :math:`f^{(2k+1)}`), so their midpoint
:math:`\tfrac12(G + R)` (exact for degree ``2k - 1``, the trace included) is within half
the bracket of every such integral. It matters at the low end of a spectrum that spans
decades: a kernel block with most eigenvalues below ``1e-4`` gets its lowest Gauss node
near ``5e-3`` after 20 steps, which over-estimates ``log det(K + rho I)`` at small
``rho``, while the Radau rule puts most of that mass at 0 and under-estimates it
(:doc:`/theory/free_decompression`).

:func:`envelope_error` bounds the Wasserstein-1 distance between the probes' pooled
rules and their pooled measures. By the Chebyshev-Markov-Stieltjes inequalities
(Karlin & Studden 1966, ch. III; used for SLQ by Chen, Trogdon & Ubaru 2021) the
distribution function of :math:`\mu_z` at any :math:`t` lies between the sums of the
weights of a rule's nodes below :math:`t` less the last one and plus the next one; a
Gauss rule and a Radau rule are both canonical representations of the moments they
match, so the true distribution function lies in the intersection of their envelopes,
and the pooled one in the mean of those intersections. The bound is
:math:`\int \max(U - M, M - L)\,dt` over the nodes' range (from the lower bound when
there is one), ``M`` the pooled rules' distribution function and ``[L, U]`` the
envelope; for one Gauss rule over its nodes' range it is the familiar
:math:`\sum_j (x_{j+1}-x_j)\max(w_j, w_{j+1})`. Pooling before the maximum never
loosens it (the maximum of means is at most the mean of maxima), and the Radau envelope
narrows ``[L, U]`` (on the 4,000-point kernel block of the at-scale benchmark: 1.3e-3
block sds against 3.1e-3 for the mean per-probe Gauss bound, true error 1.8e-4). Mass
beyond the largest node is not bounded (the top of a spectrum converges first, and
deflated outliers are exact).

References
----------
.. [1] G. H. Golub, G. Meurant, *Matrices, Moments and Quadrature with Applications*,
   Princeton, 2010, chapter 6.
.. [2] S. Karlin, W. J. Studden, *Tchebycheff Systems: With Applications in Analysis and
   Statistics*, Interscience, 1966.
.. [3] T. Chen, T. Trogdon, S. Ubaru, "Analysis of stochastic Lanczos quadrature for
   spectrum approximation", ICML 2021.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["envelope_error", "merge", "radau_rules"]

Rule = tuple[np.ndarray, np.ndarray]


def merge(x: np.ndarray, w: np.ndarray) -> Rule:
    """Sorted distinct nodes with positive summed weights (normalised to one)."""
    keep = w > 0
    if not keep.any() or not np.all(np.isfinite(x[keep])):
        raise ValueError("the measure has no positive weight on finite nodes")
    xs, inv = np.unique(x[keep], return_inverse=True)
    ws = np.bincount(inv, weights=w[keep])
    return xs, ws / ws.sum()


def radau_rules(lanczos: Any, scale: float, lower: float) -> list[Rule]:
    """Per-probe Gauss-Radau rules with one node at ``lower``, from a Lanczos run.

    Parameters
    ----------
    lanczos : spectra.results.LanczosResult
        The run behind an SLQ measure (:attr:`spectra.quadrature.SLQMeasure.lanczos`),
        whose tridiagonals belong to ``A / scale``.
    scale : float
        :attr:`~spectra.quadrature.SLQMeasure.scale`.
    lower : float
        A lower bound of the spectrum of ``A`` (0 for a PSD block). When rounding puts
        a Ritz value at or below it, the node is moved just below that Ritz value and
        the rule's nodes are clipped at ``lower``.

    Returns
    -------
    list of (nodes, weights)
        In the units of ``A``, weights summing to one; the Gauss rule for a probe whose
        Krylov space became invariant (it is exact).
    """
    from spectra.gauss import radau_rule

    out = []
    for i in range(lanczos.alpha.shape[0]):
        s = int(lanczos.steps[i])
        a, b = lanczos.alpha[i, :s], lanczos.beta[i, : s - 1]
        theta, _ = lanczos.ritz(i)
        span = max(float(np.max(np.abs(theta))), np.finfo(float).tiny)
        node = min(lower / scale, float(theta[0]) - 1e-12 * span)
        x, w = radau_rule(a, b, float(lanczos.beta[i, s - 1]), node)
        if x.size > s:  # not an invariant space: the smallest node is the prescribed one
            x[0] = node  # (exactly, not up to the rounding of the bordered eigensolve)
        out.append((np.maximum(x * scale, lower), w))
    return out


def _cdfs(rule: Rule, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rule's distribution function at ``t`` (off its nodes) and its CMS envelope."""
    x, w = merge(*rule)
    W = np.concatenate([[0.0], np.cumsum(w)])
    W[-1] = 1.0
    j = np.searchsorted(x, t, side="right")  # nodes below t
    return W[j], W[np.maximum(j - 1, 0)], W[np.minimum(j + 1, x.size)]


def envelope_error(probes: list[list[Rule]], lower: float | None = None) -> float:
    """W1 bound between the pooled rules and the pooled probe measures (module docstring).

    Parameters
    ----------
    probes : list of lists of (nodes, weights)
        Per probe, its rules (a Gauss rule, and optionally a Radau rule of the same
        run); the probe's estimate is their equal-weight mixture.
    lower : float, optional
        A lower bound of the spectrum (the bound then runs from it).

    Returns
    -------
    float
        In the units of the nodes.
    """
    nodes = [r[0] for pr in probes for r in pr]
    if lower is not None:
        nodes.append(np.array([lower], float))
    grid = np.unique(np.concatenate(nodes))
    if grid.size < 2:
        return 0.0
    t = 0.5 * (grid[1:] + grid[:-1])
    L, U, M = np.zeros(t.size), np.zeros(t.size), np.zeros(t.size)
    for pr in probes:
        lo, up = np.zeros(t.size), np.ones(t.size)
        for rule in pr:
            c, a, b = _cdfs(rule, t)
            M += c / (len(pr) * len(probes))
            lo, up = np.maximum(lo, a), np.minimum(up, b)
        L += lo / len(probes)
        U += up / len(probes)
    return float(np.sum(np.diff(grid) * np.maximum(U - M, M - L)))
