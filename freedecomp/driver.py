r"""``decompress``: the law of an ``N x N`` matrix from ``n x n`` principal submatrices.

One pipeline for every path: sample -> candidates -> validation -> flow ->
:class:`~freedecomp.result.Decompression`. Free decompression
(:doc:`/theory/free_decompression`) evolves the Stieltjes transform along
:math:`\partial_t m = -m + \partial_z m / m`, :math:`t = \log(N/n)`, whose
characteristics are :math:`z = z_0 + (1-\alpha)/m_0(z_0)`, :math:`m_\alpha = m_0/\alpha`.
A model of the sample's law is fitted (rational R-transform, algebraic curve or
Chebyshev density), decompressed exactly, and evaluated by one Newton homotopy.
The model and its order are chosen by validation: random ``n/2`` sub-samples are
decompressed to ``n``, where the answer (the sample) is known. A Gram matrix sampled
by rows (``columns=m``) is not a free compression: its candidate is the deformed
Marchenko-Pastur law with a fitted population, checked by self-consistency and by
refits on sub-samples.

References
----------
.. [1] S. Ameli, C. van der Heide, L. Hodgkinson and M. W. Mahoney, "Spectral estimation
   with free decompression", NeurIPS 2025, arXiv:2506.11994.
.. [2] S. Ameli et al., "Free decompression with algebraic spectral curves",
   arXiv:2605.03634, 2026.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from spectra.distances import wasserstein1
from spectra.probes import as_rng
from spectra.validation import check_bool, check_choice, check_float, check_int

from . import models as _m
from .blocks import annotate, prepare_blocks
from .laws import DeformedMarchenkoPastur
from .result import Decompression, Diagnostics, GridEvaluation, Score, support_intervals
from .samplers import Sample

__all__ = ["CANDIDATES", "METHODS", "MIN_EIGENVALUES", "decompress", "evaluate_law",
           "evaluate_model"]

MIN_EIGENVALUES = 16
CANDIDATES: dict[str, list[tuple]] = {
    "rational": [(1, 0), (1, 1), (2, 1), (1, 2), (2, 2), (3, 2)],
    "algebraic": [(1, 2), (1, 3), (2, 2), (2, 3)],
    "free": [(4,), (8,), (16,)],
}
METHODS = ("auto", "rational", "algebraic", "free", "deformed")
_FITTERS = {"rational": _m.fit_rational, "algebraic": _m.fit_algebraic, "free": _m.fit_chebyshev}
_FIT_ERRORS = (ValueError, np.linalg.LinAlgError, ZeroDivisionError)


# ================================================================================ driver
def decompress(sample: Any, size: int | Sequence[int], *, method: str = "auto",
               grid: Any = None, rng: Any = None, columns: int | None = None,
               n: int | None = None, total: int | None = None,
               **options: Any) -> Decompression:
    r"""Estimate the spectral law of an ``N x N`` matrix from ``n x n`` samples of it.

    Parameters
    ----------
    sample : array_like, SpectralDensity, BlockSpectrum or callable
        Eigenvalues of a principal submatrix (1-d), a dense symmetric principal
        submatrix (2-d), several of them (3-d, or a list), the
        :class:`spectra.SpectralDensity` or :class:`~freedecomp.blocks.BlockSpectrum`
        of one or several blocks (a list), or a block sampler
        ``callable(indices) -> principal block`` returning a dense block or an operator
        (then ``n`` and ``total`` are required; ``options["num_samples"]`` blocks are
        drawn, default 4). Operator blocks are solved densely up to
        :data:`~freedecomp.blocks.DENSE_MAX`, by deflated SLQ above
        (:mod:`freedecomp.blocks`).
    size : int or increasing sequence of int
        Target size(s) ``N > n``. A sequence gives the density flow in ``.flow``.
    method : {"auto", "rational", "algebraic", "free", "deformed"}
        ``auto`` validates the rational and algebraic families (and the Chebyshev
        free-form one) and keeps the simplest that validates; ``deformed`` is for Gram
        matrices ``X X^T / m`` sampled by rows with all ``columns = m`` kept.
    grid : int or array_like, optional
        Number of grid points (default 2001) or the grid itself.
    rng : None, int or numpy Generator
        Randomness for sub-sampling and block indices.
    columns : int, optional
        Column count ``m`` of a Gram matrix (``deformed``; implies it under ``auto``).
    n, total : int, optional
        Block size and matrix size of a block sampler.
    **options
        ``repeats`` (validation sub-samples, default 3), ``slack`` (selection
        tolerance, default 0.15), ``order`` (force one candidate order),
        ``num_samples`` (blocks drawn from a sampler), ``check`` (run the
        free-compression and stability checks, default True), ``blocks`` (a dict of
        block-estimation options for operator blocks and densities: ``num_probes``,
        ``num_steps``, ``dense_max``, ``psd``; see
        :func:`freedecomp.blocks.block_spectrum`).

    Returns
    -------
    Decompression

    Raises
    ------
    ValueError
        Bad sizes (``N <= n``), non-finite or non-symmetric input, fewer than
        ``MIN_EIGENVALUES`` eigenvalues, a degenerate (all-equal) spectrum.
    TypeError
        A sample of unsupported type, an unknown option, an argument of the wrong kind.

    Examples
    --------
    >>> import numpy as np
    >>> from freedecomp import decompress, laws
    >>> A = laws.MarchenkoPastur(0.5).sample_matrix(400, rng=0)
    >>> res = decompress(A[:100, :100], 400, rng=1)
    >>> bool(abs(res.density.weights.sum() - 1) < 1e-12)
    True
    """
    opts = _Options.from_kwargs(options)
    method = check_choice(method, "method", METHODS)
    g = as_rng(rng)
    smp = prepare_blocks(sample, n=n, total=total, rng=g, num_samples=opts.num_samples,
                         minimum=MIN_EIGENVALUES, options=opts.blocks)
    sizes = _check_sizes(size, smp.n, smp.total)
    num, grid = _check_grid(grid)
    if method == "deformed" or (method == "auto" and columns is not None):
        fit: _Fit = _DeformedFit.create(smp, columns, method, g, opts)
    else:
        fit = _FreeFit.create(smp, method, g, opts)
    results = fit.finish([fit.result(N, num, grid) for N in sizes])
    return annotate(replace(results[-1], flow=tuple(results)), smp)


@dataclass(frozen=True)
class _Options:
    """The validated ``**options`` of :func:`decompress`."""

    repeats: int = 3
    slack: float = 0.15
    order: tuple | None = None
    num_samples: int = 4
    check: bool = True
    blocks: dict | None = None

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> _Options:
        """Validate ``options``: unknown names are a TypeError, values go through the checkers."""
        unknown = set(options) - {"repeats", "slack", "order", "num_samples", "check", "blocks"}
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        order = options.get("order")
        return cls(repeats=check_int(options.get("repeats", 3), "repeats", low=1),
                   slack=check_float(options.get("slack", 0.15), "slack", low=0.0),
                   order=None if order is None else tuple(order),
                   num_samples=check_int(options.get("num_samples", 4), "num_samples", low=1),
                   check=check_bool(options.get("check", True), "check"),
                   blocks=options.get("blocks"))


def _check_sizes(size: Any, n: int, total: int | None) -> list[int]:
    sizes = [check_int(s, "size") for s in np.atleast_1d(size)]
    if any(s <= n for s in sizes):
        raise ValueError(f"target sizes must exceed the sample size n={n}, got {sizes}")
    if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"a size sequence must be increasing, got {sizes}")
    if total is not None and sizes[-1] > total:
        raise ValueError(f"target size {sizes[-1]} exceeds the matrix size {total}")
    return sizes


def _check_grid(grid: Any) -> tuple[int, np.ndarray | None]:
    """``(num, None)`` for a point count (default 2001), ``(2001, grid)`` for a grid."""
    if grid is None:
        return 2001, None
    if np.ndim(grid) == 0:
        return check_int(grid, "grid", low=2), None
    return 2001, np.asarray(grid, dtype=float)


class _Fit(Protocol):
    """A fitted candidate: one :class:`Decompression` per size, then the final checks."""

    def result(self, N: int, num: int, grid: np.ndarray | None) -> Decompression: ...

    def finish(self, results: list[Decompression]) -> list[Decompression]: ...


def _decompression(ev: GridEvaluation, N: int, smp: Sample, diag: dict[str, Any],
                   edges: list, edge_errors: list, bands: np.ndarray | None = None
                   ) -> Decompression:
    """Assemble one size's result from its normalised grid evaluation."""
    diag["warnings"] = tuple(diag["warnings"])
    return Decompression(x=ev.x, rho=ev.rho, size=N, sample_size=smp.n, atoms=ev.atoms,
                         edges=edges, edge_errors=edge_errors, bands=bands,
                         diagnostics=Diagnostics(**diag))


# ======================================================================= grid evaluation
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


def evaluate_law(law: DeformedMarchenkoPastur, num: int, grid: Any = None
                 ) -> GridEvaluation:
    """Density of a deformed Marchenko-Pastur law on a grid (not normalised).

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
    return GridEvaluation(x=x, rho=rho, atoms=law.atoms, mass=mass)


def _w1(ev: GridEvaluation, reference: Any, reference_weights: Any = None) -> float:
    nodes, weights = ev.measure()
    return wasserstein1(nodes, reference, weights, reference_weights)


# ==================================================================== free candidates
def _fit(family: str, order: tuple, eigs: np.ndarray) -> _m.CurveModel:
    return _FITTERS[family](eigs, *order)


def _validation_grid(eigs: np.ndarray, num: int = 256) -> tuple[np.ndarray, float]:
    """Fixed grid for ``n/2 -> n`` validation: the sample's range padded by half an sd."""
    pad = 0.5 * float(eigs.std())
    return np.linspace(float(eigs[0]) - pad, float(eigs[-1]) + pad, num), pad


def _score(fam: str, order: tuple, sub: np.ndarray, target: np.ndarray, grid: np.ndarray,
           sd: float) -> tuple[float, _m.CurveModel | None]:
    """Validation error of one candidate on one sub-sample (W1 in sd units).

    The decompressed law is evaluated on the fixed window ``grid`` (the target's range
    padded); when more than 1% of its mass falls outside, it is re-evaluated on its own
    adaptive support grid so that no mass is lost from the transport cost. A clearly
    non-physical law (negative part, or mass off by more than 5%) is penalised by one sd.
    """
    try:
        model = _fit(fam, order, sub)
        alpha = target.size / sub.size
        ev = evaluate_model(model, alpha, grid=grid)
        if ev.mass < 0.99:
            ev = evaluate_model(model, alpha, num=grid.size)
        bad = ev.negative > 0.02 or abs(ev.mass - 1) > 0.05
        return _w1(ev, target) / sd + (1.0 if bad else 0.0), model
    except _FIT_ERRORS:
        return np.inf, None


def _validate(sample: Sample, families: Sequence[str], rng: np.random.Generator,
              repeats: int, haar: bool = False, orders: Sequence[tuple] | None = None,
              screen: float = 2.5, keep: int = 5) -> dict[str, Score]:
    """Validation error (W1 in sample sd units) of the candidates, ``n/2 -> n``.

    Two stages: every candidate is scored on the first sub-sample (screening); those
    within ``1.3`` times the best screening error, and the best ``keep`` of those within
    ``screen`` times it, are scored on the remaining ``repeats - 1`` and their ``error``
    is the mean over all sub-samples. Screened-out candidates keep their one-sample
    error and are marked ``screened=True`` (they are not eligible for selection).
    """
    subs = [sample.subsample(sample.n // 2, rng, haar=haar) for _ in range(repeats)]
    target = sample.eigs
    sd = float(target.std())
    grid, _ = _validation_grid(target)
    cands = [(fam, o) for fam in families for o in (orders or CANDIDATES[fam])]
    first = {key: _score(*key, subs[0], target, grid, sd) for key in cands}
    errs1 = {k: v[0] for k, v in first.items()}
    best1 = min(errs1.values())
    ranked = sorted((k for k in cands if np.isfinite(errs1[k])), key=errs1.get)
    shortlist = [k for i, k in enumerate(ranked)
                 if errs1[k] <= 1.3 * best1 or (i < keep and errs1[k] <= screen * best1)]
    out: dict[str, Score] = {}
    for key in cands:
        errs = [errs1[key]]
        model = first[key][1]
        if key in shortlist:
            errs += [_score(*key, sub, target, grid, sd)[0] for sub in subs[1:]]
        name = model.name if model is not None else f"{key[0]}{key[1]}"
        out[name] = Score(family=key[0], order=key[1], error=float(np.mean(errs)),
                          screened=key not in shortlist and len(subs) > 1,
                          complexity=model.complexity if model is not None else 99)
    return out


def _select(scores: dict[str, Score], slack: float) -> tuple[str, str | None, str]:
    """Simplest candidate whose validation error is within ``slack`` of the best."""
    finite = {k: v for k, v in scores.items() if np.isfinite(v.error) and not v.screened}
    if not finite:
        raise ValueError("no model could be fitted to the sample (all validations failed)")
    best = min(v.error for v in finite.values())
    ok = [k for k, v in finite.items() if v.error <= best * (1 + slack)]
    chosen = min(ok, key=lambda k: (finite[k].complexity, finite[k].error))
    others = sorted((k for k in finite if k != chosen), key=lambda k: finite[k].error)
    why = (f"{chosen} is the simplest model whose n/2->n validation error "
           f"({finite[chosen].error:.2e} sd) is within {slack:.0%} of the best "
           f"({best:.2e} sd) among {len(finite)} candidates validated on every "
           f"sub-sample (the other {len(scores) - len(finite)} failed or were screened out "
           "on the first)")
    return chosen, (others[0] if others else None), why


@dataclass
class _FreeFit:
    """The validated free-decompression model and what its checks need."""

    smp: Sample
    family: str
    order: tuple
    model: _m.CurveModel
    scores: dict[str, Score]
    chosen: str | None
    diag: dict[str, Any]
    g: np.random.Generator
    opts: _Options

    @classmethod
    def create(cls, smp: Sample, method: str, g: np.random.Generator, opts: _Options
               ) -> _FreeFit:
        """Validate the candidates of ``method`` (or take the forced order) and fit."""
        families = ["rational", "algebraic", "free"] if method == "auto" else [method]
        if opts.order is not None:
            fam = families[0] if method != "auto" else "rational"
            order = opts.order
            chosen, runner, scores = None, None, {}
            reason = f"order {order} forced by the caller"
        else:
            if smp.n < 2 * MIN_EIGENVALUES:
                raise ValueError(f"validation needs at least {2 * MIN_EIGENVALUES} eigenvalues")
            scores = _validate(smp, families, g, opts.repeats)
            chosen, runner, reason = _select(scores, opts.slack)
            fam, order = scores[chosen].family, scores[chosen].order
        model = _fit(fam, order, smp.pooled)
        diag = {"method": method, "sample_size": smp.n, "model": model.name, "family": fam,
                "reason": reason,
                "validation_error": scores[chosen].error if chosen else None,
                "runner_up": runner,
                "runner_up_error": scores[runner].error if runner else None,
                "validation": scores}
        return cls(smp, fam, order, model, scores, chosen, diag, g, opts)

    def result(self, N: int, num: int, grid: np.ndarray | None) -> Decompression:
        """Decompress to size ``N``, with bands or stability from refits when checking."""
        alpha = N / self.smp.n
        ev = evaluate_model(self.model, alpha, num=num, grid=grid)
        d = dict(self.diag, alpha=alpha, mass_before_normalisation=ev.mass,
                 negative_mass=ev.negative, residual=ev.residual, nonfinite=ev.nonfinite,
                 warnings=[])
        spread = _spread(self.smp, self.family, self.order, alpha, ev.x, self.g,
                         self.opts.repeats) if self.opts.check else None
        return _finish(ev.normalised(), N, self.smp, d, spread, self.model.scale)

    def finish(self, results: list[Decompression]) -> list[Decompression]:
        """Free-compression check on the last size (real sub-blocks against Haar ones)."""
        if not (self.opts.check and self.smp.matrix is not None and self.chosen is not None):
            return results
        last = results[-1]
        diag = _free_compression_check(self.smp, self.scores, self.chosen, self.g,
                                       self.opts.repeats, last.diagnostics)
        return [*results[:-1], replace(last, diagnostics=diag)]


def _spread(smp: Sample, fam: str, order: tuple, alpha: float, x: np.ndarray,
            g: np.random.Generator, repeats: int) -> dict[str, Any]:
    """Decompressions of the model refitted to other samples, on the common grid.

    Several submatrices: one decompression each (bands). One sample: ``3n/4``
    sub-samples decompressed to the same ``N`` (a stability check).
    """
    if len(smp.blocks) > 1:
        sets, kind = smp.blocks, "samples"
    else:
        k = (3 * smp.n) // 4
        sets, kind = [smp.subsample(k, g) for _ in range(repeats)], "subsamples"
    rhos, edges = [], []
    N = alpha * smp.n
    # refits are solved on every 4th grid point and interpolated (they only feed bands,
    # edge spreads and the stability figure, all far coarser than the grid step)
    sub = np.unique(np.concatenate([np.arange(0, x.size, 4), [x.size - 1]]))
    xs = x[sub]
    for e in sets:
        try:
            rs = evaluate_model(_fit(fam, order, e), N / e.size, grid=xs).normalised().rho
        except _FIT_ERRORS:
            continue
        r = np.interp(x, xs, rs)
        r *= float(np.trapezoid(rs, xs)) / max(float(np.trapezoid(r, x)), 1e-300)
        rhos.append(r)
        iv = support_intervals(x, r)
        if iv:
            edges.append((iv[0][0], iv[-1][1]))
    return {"rhos": np.array(rhos), "edges": np.array(edges), "kind": kind}


def _finish(ev: GridEvaluation, N: int, smp: Sample, d: dict[str, Any],
            spread: dict[str, Any] | None, scale: float) -> Decompression:
    """Checks, edges, bands and warnings of one size of the free path."""
    x, rho = ev.x, ev.rho
    if d["nonfinite"]:
        d["warnings"].append(f"{d['nonfinite']} grid points gave no finite root (set to 0)")
    if d["residual"] > 1e-6:
        d["warnings"].append(f"root residual {d['residual']:.1e}: the solver did not converge")
    ok = d["negative_mass"] < 0.01 and abs(d["mass_before_normalisation"] - 1) < 0.02
    edges = support_intervals(x, rho)
    edge_err = [(0.5 * (x[1] - x[0]),) * 2 for _ in edges]
    bands = None
    if spread is not None and len(spread["rhos"]) >= 2:
        bands, edge_err, stable = _refit_checks(x, rho, N / smp.n, scale, spread, edges,
                                                edge_err, d)
        ok = ok and stable
    if not ok:
        d["warnings"].append(
            f"alpha={N / smp.n:g} looks past what the sample supports (mass before "
            f"normalisation {d['mass_before_normalisation']:.3f}, negative part "
            f"{d['negative_mass']:.3f}); treat the result as unreliable")
    d["decompressible"] = ok
    return _decompression(ev, N, smp, d, edges, edge_err, bands)


def _refit_checks(x: np.ndarray, rho: np.ndarray, alpha: float, scale: float,
                  spread: dict[str, Any], edges: list, edge_err: list, d: dict[str, Any]
                  ) -> tuple[np.ndarray | None, list, bool]:
    """Stability figure, bands and edge errors from the refits of :func:`_spread`."""
    R = spread["rhos"]
    h = x[1] - x[0]
    stab = float(np.mean([np.trapezoid(np.abs(np.cumsum(r - rho) * h), x) for r in R]))
    stab /= float(np.sqrt(alpha)) * scale
    d["stability"] = stab
    bands = None
    if spread["kind"] == "samples":
        bands = np.stack([np.minimum(R.min(0), rho), np.maximum(R.max(0), rho)])
    if len(spread["edges"]) >= 2 and len(edges) == 1:
        factor = 1.0 if spread["kind"] == "samples" else 0.5
        s = factor * spread["edges"].std(0, ddof=1) + 0.5 * h
        edge_err = [(float(s[0]), float(s[1]))]
    if stab > 0.05:
        d["warnings"].append(
            f"refits on other (sub)samples disagree by {stab:.2f} sd in W1: the sample "
            f"does not pin down the law at alpha={alpha:g}")
    return bands, edge_err, stab <= 0.05


def _free_compression_check(smp: Sample, scores: dict[str, Score], chosen: str,
                            g: np.random.Generator, repeats: int, diag: Diagnostics
                            ) -> Diagnostics:
    """Compare validation on real sub-blocks with validation on Haar compressions."""
    fam, order = scores[chosen].family, scores[chosen].order
    haar = _validate(smp, [fam], g, repeats, haar=True, orders=[order])
    e_haar = min(v.error for v in haar.values())
    e_true = scores[chosen].error
    free = bool(e_true <= 1.3 * e_haar + 0.01)
    warnings = list(diag.warnings)
    if e_true > 0.1:
        warnings.append(
            f"no model validates well (n/2->n error {e_true:.3f} sd): the sample may not be a "
            "free compression (a Gram matrix sampled by rows needs method='deformed', "
            "columns=m) or the law lies outside the model families")
    if not free:
        hint = " (try method='deformed', columns=m)" if smp.eigs.min() >= 0 else ""
        warnings.append(
            f"the sample does not behave like a free compression: real sub-blocks validate "
            f"at {e_true:.3f} sd, Haar-rotated ones at {e_haar:.3f} sd{hint}")
    return replace(diag, free_compression=free, validation_error_haar=e_haar,
                   warnings=tuple(warnings))


# ================================================================== deformed candidate
@dataclass
class _DeformedFit:
    """The deformed Marchenko-Pastur law fitted to a row-sampled Gram block."""

    smp: Sample
    columns: int
    base: DeformedMarchenkoPastur
    subs: list
    diag: dict[str, Any]

    @classmethod
    def create(cls, smp: Sample, columns: int | None, method: str, g: np.random.Generator,
               opts: _Options) -> _DeformedFit:
        """Fit the population at ``c = n/m``; refit on sub-samples when checking."""
        if columns is None:
            raise ValueError("method='deformed' needs columns= (the column count m of X X^T/m)")
        m = check_int(columns, "columns", low=1, hint=" (the column count m of X X^T/m)")
        if smp.eigs.min() < -1e-8 * abs(smp.eigs).max():
            raise ValueError("a Gram matrix is positive semi-definite; the sample has negative "
                             f"eigenvalues (min {smp.eigs.min():.3g})")
        c_n = smp.n / m
        t, w, resid = _m.fit_population(np.clip(smp.pooled, 0.0, None), c_n)
        base = DeformedMarchenkoPastur(t, w, c_n)
        sd = float(smp.eigs.std())
        reason = ("method='deformed'" if method == "deformed" else
                  "columns given: a Gram matrix sampled by rows is not a free compression, "
                  "so the deformed law is used")
        diag: dict[str, Any] = {
            "method": "deformed", "model": f"deformed-mp({t.size} population atoms)",
            "reason": reason, "sample_size": smp.n, "columns": m, "population": (t, w),
            "nnls_residual": resid, "free_compression": False,
            "self_consistency_error": _w1(evaluate_law(base, 500).normalised(), smp.eigs) / sd}
        subs = []
        if opts.check and smp.matrix is not None:
            for _ in range(3):
                e = smp.subsample(smp.n // 2, g)
                ts, ws, _ = _m.fit_population(np.clip(e, 0.0, None), e.size / m)
                subs.append((ts, ws))
            diag["validation_error"] = float(np.mean(
                [_w1(evaluate_law(DeformedMarchenkoPastur(ts, ws, c_n), 500).normalised(),
                     smp.eigs) for ts, ws in subs])) / sd
        return cls(smp, m, base, subs, diag)

    def result(self, N: int, num: int, grid: np.ndarray | None) -> Decompression:
        """The law at ratio ``N/m``, its stability against the sub-sample refits."""
        smp, m = self.smp, self.columns
        ev = evaluate_law(self.base.decompressed(N / smp.n), num, grid).normalised()
        d = dict(self.diag, alpha=N / smp.n, ratio=N / m, mass_before_normalisation=ev.mass,
                 warnings=[])
        self_err = d["self_consistency_error"]
        ok = self_err < 0.05
        if self.subs:
            nodes, weights = ev.measure()
            sd_n = float(np.sqrt(np.sum(weights * (nodes - np.sum(weights * nodes)) ** 2)))
            stab = float(np.mean([
                _w1(evaluate_law(DeformedMarchenkoPastur(ts, ws, N / m), 500).normalised(),
                    nodes, weights) for ts, ws in self.subs])) / sd_n
            d["stability"] = stab
            ok = ok and stab < 0.1
        if not ok:
            d["warnings"].append(
                f"ratio N/m={N / m:g} looks past what the sample supports (self-consistency "
                f"{self_err:.3f} sd, stability {d.get('stability', float('nan')):.3f}); "
                "treat the result as unreliable")
        d["decompressible"] = ok
        edges = support_intervals(ev.x, ev.rho)
        h = float(ev.x[1] - ev.x[0])
        return _decompression(ev, N, smp, d, edges, [(h, h)] * len(edges))

    def finish(self, results: list[Decompression]) -> list[Decompression]:
        """No further check on the deformed path."""
        return results
