r"""Exact checks on a decompressed law, each with a figure, a limit and a warning.

Free decompression keeps the first free cumulant and multiplies the ``k``-th by
:math:`\alpha^{k-1}` (:doc:`/theory/free_decompression`, "The free-cumulant
invariants"). Whatever model produced an estimate, these hold for a free
decompression of the sample, so a breach says the estimate is wrong (or that the
matrix is not in the regime where free decompression applies):

``mean``
    the estimate's mean against the sample's, :math:`\frac Nn\operatorname{tr}(B)/N`
    (the unbiased trace of a uniformly random principal block); figure: relative error
    of the trace (of the mean in sds when the mean is near zero); limit 1%.
``variance``
    the variance against the free-cumulant rule :math:`\kappa_2 \to \alpha\kappa_2`;
    figure: ``|var / (alpha var_n) - 1|``; limit 10%.
``negative_mass``
    for a positive semi-definite sample: mass below zero; limit 1%.
``atom``
    one atom holding most of the mass (over 50%: a warning, since the flow can create
    such atoms), or an atom heavier than the rank bound
    :math:`w_N \le 1 - (1 - w_n)/\alpha` allows (severe: impossible for a
    decompression); figure: the atom's mass.
``mass``
    the mass of the model found on its grid before normalising (free families);
    figure: ``|mass - 1|``; limit 2%.

A severe breach sets ``decompressible=False``; every breach is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import GridEvaluation

__all__ = ["Check", "run_checks"]

LIMITS = {"mean": 0.01, "variance": 0.10, "negative_mass": 0.01, "atom": 0.5, "mass": 0.02}


@dataclass(frozen=True)
class Check:
    """One invariant check: its ``figure`` against its ``limit`` and what a breach means."""

    name: str
    figure: float
    limit: float
    passed: bool
    message: str
    severe: bool = True


def _check(name: str, figure: float, limit: float, message: str, severe: bool = True
           ) -> Check:
    ok = bool(np.isfinite(figure) and figure <= limit)
    return Check(name, float(figure), limit, ok, message, severe)


def run_checks(ev: GridEvaluation, eigs: np.ndarray, alpha: float, *, psd: bool,
               zero_fraction: float, raw_mass: float | None) -> dict[str, Check]:
    """Run the checks on the normalised estimate ``ev`` of the sample ``eigs`` at ``alpha``.

    Parameters
    ----------
    ev : GridEvaluation
        The normalised estimate (atoms and outliers included).
    eigs : ndarray
        The sample's eigenvalues (all blocks pooled).
    alpha : float
        ``N/n``.
    psd : bool
        The sample is positive semi-definite.
    zero_fraction : float
        Fraction of exact zeros in the sample (``w_n``).
    raw_mass : float or None
        Mass of the model before normalising (free families), else ``None``.
    """
    nodes, weights = ev.measure()
    mu, var = float(eigs.mean()), float(eigs.var())
    m1 = float(np.sum(weights * nodes))
    v1 = float(np.sum(weights * (nodes - m1) ** 2))
    sd = np.sqrt(var)
    rel = abs(m1 - mu) / (abs(mu) if abs(mu) > sd else sd)
    out = {"mean": _check(
        "mean", rel, LIMITS["mean"],
        f"the estimate's mean {m1:.6g} differs from the sample's {mu:.6g} by {rel:.1%} "
        "(decompression keeps the mean: N/n x tr(block) is the unbiased trace)")}
    vr = abs(v1 / (alpha * var) - 1.0) if var > 0 else 0.0
    out["variance"] = _check(
        "variance", vr, LIMITS["variance"],
        f"the estimate's variance {v1:.4g} breaks the free-cumulant rule alpha x var(block) "
        f"= {alpha * var:.4g} by {vr:.1%}")
    if psd:
        top = float(np.abs(eigs).max())
        neg = float(np.sum(weights[nodes < -1e-6 * top]))
        out["negative_mass"] = _check(
            "negative_mass", neg, LIMITS["negative_mass"],
            f"{neg:.1%} of the estimate's mass lies below zero for a positive "
            "semi-definite sample")
    bound = 1.0 - (1.0 - zero_fraction) / alpha
    rank_atom = [(a, w) for a, w in ev.atoms if zero_fraction > 0 and a == 0.0]
    others = [(a, w) for a, w in ev.atoms if not (zero_fraction > 0 and a == 0.0)]
    where, heavy = max(others, key=lambda t: t[1], default=(0.0, 0.0))
    impossible = heavy > 1.0 - 1.0 / alpha + 0.01  # rank(A_N) >= rank(block) = n
    if rank_atom and rank_atom[0][1] > bound + 0.01:
        where, heavy, impossible = 0.0, rank_atom[0][1], True
    msg = (f"one atom at {where:.4g} holds {heavy:.1%} of the mass: ")
    if impossible:
        msg += (f"more than the rank bound allows ({bound if rank_atom else 1 - 1 / alpha:.3f}"
                ": rank(A) >= rank(block))")
    else:
        msg += ("a multi-scale small end collapsed into a point, unless the matrix is "
                "rank-deficient at this size (a Gram matrix with fewer columns than N)")
    out["atom"] = Check("atom", float(heavy), LIMITS["atom"],
                        not (impossible or heavy > LIMITS["atom"]), msg, severe=impossible)
    if raw_mass is not None:
        out["mass"] = _check(
            "mass", abs(raw_mass - 1.0), LIMITS["mass"],
            f"the model had mass {raw_mass:.3f} on its grid before normalising")
    return out
