r"""The candidates of :func:`freedecomp.decompress` and their ``n/2 -> n`` validation.

A candidate is a complete estimator from block eigenvalues to the law of the larger
matrix:

* the **free families** (``rational``, ``algebraic``, ``free``, and ``log`` -- the
  log-variable model of :mod:`freedecomp.logmodel` for positive spectra spanning
  decades): the block's spectrum
  is split into exact zeros, outliers and bulk (:mod:`freedecomp.outliers`); a model
  of the bulk (with the zeros) is decompressed by the bulk ratio ``(N - k)/(n - k)``,
  its atom at zero set to the exact rank-kept mass when the block is rank-deficient,
  and the ``k`` outliers are mapped along the real characteristic
  (:doc:`/theory/free_decompression`);
* the **baselines**: ``nystrom-pad`` (block eigenvalues times ``N/n``, padded with
  ``N - n`` zeros: the far-outlier limit of the flow) and ``block`` (the block's
  spectrum as it is).

Validation decompresses random ``n/2`` sub-blocks (Haar compressions when only
eigenvalues are given) back to ``n``, where the answer -- the block -- is known, and
scores each candidate with :func:`freedecomp.evaluation.validation_error` plus
penalties for what no spectrum can do (negative density, mass lost, mass below zero
for a positive semi-definite matrix, an atom the data do not have).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import models as _m
from .evaluation import discrete_evaluation, evaluate_model, validation_error
from .logmodel import evaluate_log, fit_log
from .outliers import Split, map_outliers, split_blocks, zero_tolerance
from .result import GridEvaluation, Score

__all__ = ["BASELINES", "CANDIDATES", "Estimate", "estimate", "validate"]

CANDIDATES: dict[str, list[tuple]] = {
    "rational": [(1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (2, 2), (3, 2)],
    "algebraic": [(1, 2), (1, 3), (2, 2), (2, 3)],
    "free": [(4,), (8,), (16,)],
    "log": [(8,), (16,)],
    "hybrid": [(8,), (4,), (2,)],
}
BASELINES = ("nystrom-pad", "block")
FIT_ERRORS = (ValueError, np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError)
_FITTERS = {"rational": _m.fit_rational, "algebraic": _m.fit_algebraic,
            "free": _m.fit_chebyshev, "log": fit_log}
_COMPLEXITY = {"block": 0, "nystrom-pad": 0}


@dataclass(frozen=True, eq=False)
class Estimate:
    """One candidate's estimate of the law at the larger size.

    Attributes
    ----------
    ev : GridEvaluation
        The normalised law: continuous bulk, atoms (zero atom, model atoms) and the
        mapped outliers as atoms of mass ``1/N`` each.
    raw : GridEvaluation or None
        The bulk's evaluation before normalisation (free families).
    name : str
        Model name.
    complexity : int
        Number of free parameters (baselines: 0).
    outliers : list of (ndarray, ndarray, str)
        Per side (``"upper"``, ``"lower"``): block values and mapped locations, one row
        per block.
    spurious : float
        Mass of the model's atoms other than the exact atom at zero.
    zero_mass : float
        Mass the estimate puts in the exact atom at zero (rank).
    alpha_bulk : float
        Ratio the bulk was decompressed by.
    local : (ndarray, float)
        Localised outliers (block values, unmoved) and how many eigenvalues of the full
        matrix each stands for (``N / (blocks * n)``).
    """

    ev: GridEvaluation
    raw: GridEvaluation | None
    name: str
    complexity: int
    outliers: list
    spurious: float = 0.0
    zero_mass: float = 0.0
    alpha_bulk: float = 1.0
    local: tuple = (np.zeros(0), 0.0)


def _baseline(family: str, blocks: Sequence[np.ndarray], alpha: float, num: int,
              grid: Any) -> Estimate:
    e = np.concatenate(list(blocks))
    e = np.where(np.abs(e) <= zero_tolerance(e), 0.0, e)  # exact zeros: one atom
    if family == "block":
        ev = discrete_evaluation(e, np.full(e.size, 1.0 / e.size), num, grid)
        return Estimate(ev, None, "block", 0, [])
    pad = 1.0 - 1.0 / alpha
    nodes = np.concatenate([alpha * e, [0.0]])
    weights = np.concatenate([np.full(e.size, (1.0 - pad) / e.size), [pad]])
    ev = discrete_evaluation(nodes, weights, num, grid)
    zero = sum(w for a, w in ev.atoms if a == 0.0)
    return Estimate(ev, None, "nystrom-pad", 0, [], zero_mass=zero)


def _mapped(splits: list[Split], alpha: float) -> list:
    """Outliers of each block mapped along the characteristic, per side."""
    out = []
    for side in ("upper", "lower"):
        vals = [s.high if side == "upper" else s.low for s in splits]
        if vals[0].size == 0:
            continue
        rests = [np.concatenate([s.rest, s.low if side == "upper" else s.high])
                 for s in splits]
        maps = [map_outliers(v, r, alpha) for v, r in zip(vals, rests, strict=True)]
        out.append((np.array(vals), np.array(maps), side))
    return out


def estimate(family: str, order: tuple, blocks: Sequence[np.ndarray], alpha: float, *,
             psd: bool, num: int = 2001, grid: Any = None,
             matrices: list | None = None) -> Estimate:
    """The estimate of one candidate from ``blocks`` (same size ``n``) at ``N = alpha n``.

    Raises
    ------
    ValueError, LinAlgError
        When the candidate cannot be fitted (too few bulk eigenvalues, a free-form model
        asked to carry an atom, a model with no continuous mass).
    """
    if family in BASELINES:
        return _baseline(family, blocks, alpha, num, grid)
    if family == "hybrid":
        return _keep_mean(_hybrid(order[0], blocks, alpha, num, grid, matrices), blocks,
                          True)
    n = blocks[0].size
    N = alpha * n
    splits = split_blocks(list(blocks), psd, matrices=matrices)
    k = splits[0].high.size + splits[0].low.size
    local = np.concatenate([s.local for s in splits])
    frac = local.size / (n * len(blocks))  # localised outliers keep their mass fraction
    bulk = np.concatenate([s.bulk for s in splits])
    if bulk.size < 8 or np.ptp(bulk) <= 0:
        raise ValueError("too few bulk eigenvalues to fit a model")
    zeros = sum(s.zeros for s in splits)
    if zeros and family in ("free", "log"):
        raise ValueError(f"the {family} model cannot carry the atom at zero")
    model = _FITTERS[family](np.concatenate([s.rest for s in splits]), *order)
    alpha_b = (N * (1 - frac) - k) / (n * (1 - frac) - k)
    if family == "log":
        raw = evaluate_log(model, alpha_b, num, grid)
    else:
        raw = evaluate_model(model, alpha_b, num=num, grid=grid)
    ev = raw.normalised()
    missed = 0.0
    if zeros:  # (curve models only)
        sd = model.scale * np.sqrt(alpha_b)
        ev, missed = _exact_zero_atom(ev, zeros / (zeros + bulk.size), alpha_b, sd)
        # the mass check counts the exact atom in place of the model's own near zero
        far = sum(m for a, m in raw.atoms if abs(a) >= 0.05 * sd)
        cont = raw.mass - sum(m for _, m in raw.atoms)
        raw = replace(raw, mass=cont + far + ev.atoms[0][1])
    f = 1.0 - k / N - frac
    atoms = [(a, w * f) for a, w in ev.atoms]
    zero_mass = sum(w for a, w in atoms if zeros and a == 0.0)
    spurious = sum(w for a, w in atoms) - zero_mass + missed
    mapped = _mapped(splits, alpha)
    for _, locs, _ in mapped:
        atoms += [(float(x), 1.0 / N) for x in locs.mean(axis=0)]
    atoms += [(float(x), 1.0 / (n * len(blocks))) for x in local]
    ev = replace(ev, rho=ev.rho * f, atoms=atoms)
    return _keep_mean(Estimate(ev, raw, model.name, model.complexity, mapped, spurious,
                               zero_mass, alpha_b, (local, N / (n * len(blocks)))), blocks,
                      psd)


#: order of the log-variable model of the hybrid's rest
HYBRID_ORDER = 16
#: smallest eigenvalue the hybrid resolves, relative to the largest
LOG_RANGE = 1e-9


def _hybrid(part: int, blocks: Sequence[np.ndarray], alpha: float, num: int, grid: Any,
            matrices: list | None = None) -> Estimate:
    r"""Top ``n/part`` eigenvalues mapped as outliers, the rest decompressed in ``log x``.

    The large end of a kernel-like spectrum is a sequence of isolated eigenvalues, each
    moved along the real characteristic (:func:`~freedecomp.outliers.map_outliers`;
    about ``alpha`` times the block value, the Nystrom scaling, far from the rest) and
    averaged rank by rank over the blocks; the positive rest, spanning decades, is
    fitted by the log-variable model (:mod:`freedecomp.logmodel`) and decompressed by
    the bulk ratio ``(N(1-w) - K)/(n(1-w) - K)``. Exact zeros (zero rows of the block,
    fraction ``w``) keep their fraction (:doc:`/theory/free_decompression`, section 4b);
    mass the flow carries below the smallest resolved scale joins the atom at zero (the
    flow creates one where the law is thin near zero, Marchenko-Pastur past c = 1);
    any other exact zero is a rank deficiency, whose atom the flow grows (the rank
    rule), which this model cannot carry: such samples are refused, like samples that
    are not positive semi-definite.
    """
    n = blocks[0].size
    N = alpha * n
    K = max(1, n // part)
    vals, locs, rests, zeros = [], [], [], 0
    for b, M in zip(blocks, matrices or [None] * len(blocks), strict=True):
        e = np.sort(b)
        tol = zero_tolerance(e)
        if e[0] < -tol:
            raise ValueError("the hybrid model needs a positive semi-definite sample")
        pos = e[e > tol]
        rows = 0 if M is None else int(np.sum(np.max(np.abs(M), axis=1) <= tol))
        if e.size - pos.size - rows >= max(2, e.size // 200):
            raise ValueError("the hybrid model cannot carry the atom of a rank-deficient "
                             "block (zeros beyond its zero rows)")
        pos = e[rows:]  # a stray rounding zero joins the rest (held at the floor)
        if pos.size < K + 16:
            raise ValueError("too few positive eigenvalues for the hybrid model")
        vals.append(pos[-K:])
        locs.append(map_outliers(pos[-K:], e[: e.size - K], alpha))
        rests.append(pos[:-K])
        zeros += e.size - pos.size
    w = zeros / (n * len(blocks))
    rest = np.concatenate(rests)
    # below 1e-9 of the largest eigenvalue a block's eigenvalues are rounding noise in a
    # log variable: they are held at that floor (their W1 and trace weight is nil)
    model = fit_log(np.maximum(rest, LOG_RANGE * max(float(v[-1]) for v in vals)),
                    HYBRID_ORDER)
    alpha_b = (N * (1 - w) - K) / (n * (1 - w) - K)
    raw = evaluate_log(model, alpha_b, num, grid)
    f = 1.0 - w - K / N
    lost = max(0.0, 1.0 - raw.mass)  # pushed below the smallest resolved scale: at zero
    ev = replace(raw, atoms=[(0.0, lost)] if lost > 0 else []).normalised()
    zero = w + f * sum(m for _, m in ev.atoms)
    atoms = [(0.0, zero)] if zero > 0 else []
    atoms += [(float(x), 1.0 / N) for x in np.mean(locs, axis=0)]
    ev = replace(ev, rho=ev.rho * f, atoms=atoms)
    raw = replace(raw, mass=raw.mass + lost)
    mapped = [(np.array(vals), np.array(locs), "upper")]
    # its parameters: the K sample values carried as outliers and the log model's
    # coefficients -- validation at n/2 -> n ranks the three parts alike (within its
    # noise) while at N/n = 8, 16 the top n/8 beat n/4 and n/2 on kernel-like spectra
    # (the map of the values near the rest is the least certain), so the simplest
    # variant is the one to keep when they tie
    return Estimate(ev, raw, f"hybrid(n/{part}, log-chebyshev({HYBRID_ORDER}))",
                    K + HYBRID_ORDER + 1, mapped, 0.0, zero, alpha_b)


def _keep_mean(est: Estimate, blocks: Sequence[np.ndarray], psd: bool) -> Estimate:
    r"""Move the continuous part so that the mean is the blocks' mean exactly.

    The flow keeps the first free cumulant: the decompressed law's mean is
    ``tr(block)/n`` (``N/n tr(block)`` is the unbiased trace). Fitting, truncation
    and the outlier map break this slightly. The continuous part is stretched about
    zero for a positive semi-definite sample (it stays ``>= 0``; the whole law, atoms
    included, when the continuous part carries too little of the mean), shifted
    otherwise, by what restores the mean -- unless that is more than a factor
    ``[0.8, 1.25]`` or a shift of ``0.05`` of its sd: then it is left as it is and the
    mean check reports the breach.
    """
    ev = est.ev
    target = float(np.mean([np.mean(b) for b in blocks]))
    mass = float(np.trapezoid(ev.rho, ev.x))
    if not mass > 0:
        return est
    first = float(np.trapezoid(ev.x * ev.rho, ev.x))
    mu = first / mass
    sd = np.sqrt(max(float(np.trapezoid((ev.x - mu) ** 2 * ev.rho, ev.x)) / mass, 0.0))
    want = (target - sum(a * m for a, m in ev.atoms)) / mass  # continuous part's mean
    atoms = ev.atoms
    if psd and mu > 0:
        s = want / mu
        if not 0.8 <= s <= 1.25:  # the whole law instead (outliers carrying the mean)
            s = target / (first + sum(a * m for a, m in ev.atoms))
            if not 0.8 <= s <= 1.25:
                return est
            atoms = [(a * s, m) for a, m in ev.atoms]
        rho = np.interp(ev.x / s, ev.x, ev.rho, left=0.0, right=0.0) / s
    else:
        if not abs(want - mu) <= 0.05 * sd:
            return est
        rho = np.interp(ev.x - (want - mu), ev.x, ev.rho, left=0.0, right=0.0)
    got = float(np.trapezoid(rho, ev.x))
    if not got > 0:
        return est
    return replace(est, ev=replace(ev, rho=rho * (mass / got), atoms=atoms))


def _exact_zero_atom(ev: GridEvaluation, w: float, alpha: float, sd: float
                     ) -> tuple[GridEvaluation, float]:
    r"""Put the model's atom near zero exactly at zero with the rank-kept mass.

    A rank-deficient block (exact zeros of fraction ``w``) keeps its rank under the
    flow, so the atom at zero of the decompressed law is
    :math:`1 - (1 - w)/\alpha` (:doc:`/theory/free_decompression`, "Atoms and rank").
    The model's atoms within ``0.05 sd`` of zero are replaced by that atom and the
    continuous part rescaled; the returned figure is how far the model's own atom was
    from that mass (a penalty in validation).
    """
    target = 1.0 - (1.0 - w) / alpha
    near = [(a, m) for a, m in ev.atoms if abs(a) < 0.05 * sd]
    rest = [(a, m) for a, m in ev.atoms if abs(a) >= 0.05 * sd]
    found = sum(m for _, m in near)
    cont = float(np.trapezoid(ev.rho, ev.x))
    left = 1.0 - target - sum(m for _, m in rest)
    if not (cont > 0 and left > 0):
        raise ValueError("the model leaves no continuous mass beside the atom at zero")
    rho = np.where(np.abs(ev.x) < 0.05 * sd, 0.0, ev.rho)
    rho = rho * left / max(float(np.trapezoid(rho, ev.x)), 1e-300)
    return replace(ev, rho=rho, atoms=[(0.0, target), *rest]), abs(found - target)


def _penalty(est: Estimate, psd: bool, top: float) -> float:
    """What no valid decompression does, in sd units (added to the validation error)."""
    p = est.spurious
    raw = est.raw
    if raw is not None and (raw.negative > 0.02 or abs(raw.mass - 1) > 0.05):
        p += 1.0
    if psd:
        nodes, weights = est.ev.measure()
        p += 2.0 * float(np.sum(weights[nodes < -1e-6 * top]))
    return p


def _score(key: tuple, sub: tuple, target: np.ndarray, psd: bool
           ) -> tuple[float, str | None, int, float]:
    """``(error, name, complexity, W1 part)`` of one candidate on one sub-sample."""
    family, order = key
    e, M = sub
    try:
        est = estimate(family, order, [e], target.size / e.size, psd=psd, num=256,
                       matrices=[M])
        s = validation_error(est.ev, target, psd)
        return (s["total"] + _penalty(est, psd, float(target.max())), est.name,
                est.complexity, s["w1"])
    except FIT_ERRORS:
        return np.inf, None, 99, np.inf


def validate(sample: Any, keys: Sequence[tuple], rng: np.random.Generator, repeats: int,
             *, psd: bool, haar: bool = False, screen: float = 2.5, keep: int = 5
             ) -> dict[str, Score]:
    """Validation error of the candidates ``keys`` (``(family, order)``), ``n/2 -> n``.

    Sub-samples are drawn in turn from each block (``sample.subblock(k, rng, block=j)``)
    and scored against that block. Two stages: every candidate is scored on the first
    sub-sample (screening); those within ``1.3`` times the best screening error, the
    best ``keep`` of those within ``screen`` times it, and the baselines (the fallbacks
    of the selection, which cost nothing to score) are scored on the remaining
    ``repeats - 1`` and their ``error`` is the mean over all sub-samples. Screened-out
    candidates keep their one-sample error and are marked ``screened=True``.
    """
    nb = len(sample.blocks)
    subs = [(sample.subblock(sample.n // 2, rng, haar=haar, block=r % nb), r % nb)
            for r in range(repeats)]
    sub0, b0 = subs[0]
    first = {key: _score(key, sub0, sample.blocks[b0], psd) for key in keys}
    errs1 = {k: v[0] for k, v in first.items()}
    best1 = min(errs1.values())
    ranked = sorted((k for k in keys if np.isfinite(errs1[k])), key=errs1.get)
    shortlist = [k for i, k in enumerate(ranked)
                 if errs1[k] <= 1.3 * best1 or (i < keep and errs1[k] <= screen * best1)
                 or k[0] in BASELINES]
    out: dict[str, Score] = {}
    for key in keys:
        runs = [first[key]]
        if key in shortlist:
            runs += [_score(key, s, sample.blocks[b], psd) for s, b in subs[1:]]
        name = first[key][1] or _name(key)
        out[name] = Score(family=key[0], order=key[1],
                          error=float(np.mean([r[0] for r in runs])),
                          screened=key not in shortlist and len(subs) > 1,
                          complexity=first[key][2], w1=float(np.mean([r[3] for r in runs])),
                          runs=tuple(float(r[0]) for r in runs))
    return out


def _name(key: tuple) -> str:
    family, order = key
    return family if family in BASELINES else f"{family}{order}"
