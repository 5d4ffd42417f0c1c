r"""``decompress``: the law of an ``N x N`` matrix from ``n x n`` principal submatrices.

One pipeline for every path: input -> sample -> candidates -> validation -> flow ->
checks -> :class:`~freedecomp.result.Decompression`. Free decompression
(:doc:`/theory/free_decompression`) evolves the Stieltjes transform along
:math:`\partial_t m = -m + \partial_z m / m`, :math:`t = \log(N/n)`, whose
characteristics are :math:`z = z_0 + (1-\alpha)/m_0(z_0)`, :math:`m_\alpha = m_0/\alpha`.
The block's exact zeros and outliers are kept apart (:mod:`freedecomp.outliers`), a
model of the bulk is fitted (rational R-transform, algebraic curve or Chebyshev
density) and decompressed exactly, and the outliers are mapped along the real
characteristic (:mod:`freedecomp.candidates`). The model -- or a baseline,
Nystrom-pad or the block itself -- is chosen by validation: random ``n/2``
sub-samples are decompressed to ``n``, where the answer (the sample) is known, scored
on W1, the top eigenvalue, the trace and the small end; a model whose estimate at the
target size no valid law could be is passed over (:mod:`freedecomp.selection`). Every
result is checked against the exact invariants of the flow
(:mod:`freedecomp.invariants`) and every breach is emitted as a
:class:`~freedecomp.result.FreeDecompressionWarning`. Gram matrices sampled by rows
(``columns=m``) take the deformed paths of :mod:`freedecomp.gram`.

References
----------
.. [1] S. Ameli, C. van der Heide, L. Hodgkinson and M. W. Mahoney, "Spectral estimation
   with free decompression", NeurIPS 2025, arXiv:2506.11994.
.. [2] S. Ameli et al., "Free decompression with algebraic spectral curves",
   arXiv:2605.03634, 2026.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from spectra.densities import check_grid
from spectra.probes import as_rng
from spectra.validation import check_bool, check_choice, check_float, check_int

from .blocks import annotate, prepare_blocks
from .candidates import BASELINES, CANDIDATES, FIT_ERRORS, Estimate, estimate, validate
from .gram import SAMPLED, DeformedFit
from .invariants import run_checks
from .outliers import Outlier
from .result import Decompression, Diagnostics, FreeDecompressionWarning, Score, support_intervals
from .samplers import Sample
from .selection import candidate_keys, select_possible

__all__ = ["CANDIDATES", "METHODS", "MIN_EIGENVALUES", "decompress"]

MIN_EIGENVALUES = 16
METHODS = ("auto", "rational", "algebraic", "free", "log", "hybrid", "deformed", *BASELINES)


# ================================================================================ driver
def decompress(sample: Any, size: int | Sequence[int], *, method: str = "auto",
               grid: Any = None, rng: Any = None, columns: int | None = None,
               sampled: str = "columns", n: int | None = None, total: int | None = None,
               **options: Any) -> Decompression:
    r"""Estimate the spectral law of an ``N x N`` matrix from ``n x n`` samples of it.

    Parameters
    ----------
    sample : array_like, SpectralDensity, BlockSpectrum or callable
        Eigenvalues of a principal submatrix (1-d), a dense symmetric principal
        submatrix (2-d), several of them (3-d, or a list of equal-size blocks), the
        :class:`spectra.SpectralDensity` or :class:`~freedecomp.blocks.BlockSpectrum`
        of one or several blocks (a list), or a block sampler
        ``callable(indices) -> principal block`` returning a dense block or an operator
        (then ``n`` and ``total`` are required; ``options["num_samples"]`` blocks are
        drawn, default 4). Operator blocks are solved densely up to
        :data:`~freedecomp.blocks.DENSE_MAX`, by deflated SLQ above
        (:mod:`freedecomp.blocks`). Real input only: complex values are refused.
    size : int or increasing sequence of int
        Target size(s) ``N > n``. A sequence gives the density flow in ``.flow``.
    method : str
        One of ``"auto"``, ``"rational"``, ``"algebraic"``, ``"free"``, ``"log"``,
        ``"hybrid"``, ``"deformed"``, ``"nystrom-pad"``, ``"block"``. ``auto``
        validates the rational, algebraic and Chebyshev free-form families, the
        log-variable models (positive spectra over a decade or more: ``log``, and
        ``hybrid`` -- the top ``n/8``, ``n/4`` or ``n/2`` eigenvalues mapped as
        outliers, the rest in ``log x``; full-rank PSD blocks, not from a block
        sampler) and the two
        baselines (``nystrom-pad``: block eigenvalues times ``N/n`` padded with
        zeros; ``block``: the block as it is) and keeps the simplest that validates;
        ``deformed`` is for Gram matrices ``X X^T / m`` sampled by rows (``columns=m``).
    grid : int or array_like, optional
        Number of grid points (default 2001) or the grid itself.
    rng : None, int or numpy Generator
        Randomness for sub-sampling and block indices.
    columns : int, optional
        Column count ``m`` of a Gram matrix (``deformed``; implies it under ``auto``).
    sampled : {"columns", "rows", "features"}
        Where the independent draws of a Gram matrix sit (see :mod:`freedecomp.gram`):
        ``"columns"`` -- population on the row side, the same for the block;
        ``"rows"`` -- rows are data points, population on the column side (activation
        Grams sampled by data points); ``"features"`` -- rows are features of a
        covariance with a general population, whose block is a compression of it.
    n, total : int, optional
        Block size and matrix size of a block sampler.
    **options
        ``repeats`` (validation sub-samples, default 3), ``slack`` (selection
        tolerance, default 0.15), ``order`` (force one candidate order),
        ``num_samples`` (blocks drawn from a sampler), ``check`` (run the
        free-compression and stability checks, default True), ``blocks`` (a dict of
        block-estimation options for operator blocks and densities: ``num_probes``,
        ``num_steps``, ``rtol``, ``dense_max``, ``psd``, ``rank``, ``progress``; see
        :func:`freedecomp.blocks.block_spectrum`).

    Returns
    -------
    Decompression
        With ``outliers``, ``atoms`` (the exact atom at zero of a rank-deficient
        sample, the outliers) and ``diagnostics`` (``checks``, ``decompressible``).

    Warns
    -----
    FreeDecompressionWarning
        For every breached check and whenever ``decompressible`` is False.

    Raises
    ------
    ValueError
        Bad sizes (``N <= n``, NaN), non-finite or non-symmetric input, fewer than
        ``MIN_EIGENVALUES`` eigenvalues, a degenerate (all-equal) spectrum, blocks of
        different sizes.
    TypeError
        A sample of unsupported type (complex, strings), an unknown option, an argument
        of the wrong kind.

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
    sampled = check_choice(sampled, "sampled", SAMPLED)
    g = as_rng(rng)
    smp = normalise_input(sample, n=n, total=total, rng=g, num_samples=opts.num_samples,
                          options=opts.blocks)
    sizes = _check_sizes(size, smp.n, smp.total)
    num, grid = _check_grid(grid)
    if method == "deformed" or (method == "auto" and columns is not None):
        fit: _Fit = DeformedFit.create(smp, columns, sampled, method, g, opts.check)
    else:
        fit = _FreeFit.create(smp, method, g, opts, sizes[-1])
    results = fit.finish([fit.result(N, num, grid) for N in sizes])
    results = [annotate(r, smp) for r in results]
    _emit(results)
    return replace(results[-1], flow=tuple(results))


def normalise_input(sample: Any, *, n: int | None, total: int | None,
                    rng: np.random.Generator, num_samples: int,
                    options: dict | None = None) -> Sample:
    """Turn whatever ``decompress`` accepts into a :class:`~freedecomp.samplers.Sample`.

    The one place where the input is interpreted (eigenvalues, blocks, a block
    sampler); new kinds of input are added here. Spectral densities, block spectra and
    samplers that return operators become a :class:`~freedecomp.blocks.BlockSample`
    (:func:`freedecomp.blocks.prepare_blocks`, block options ``options``); the rest goes
    to :func:`~freedecomp.samplers.prepare_sample`.
    """
    return prepare_blocks(sample, n=n, total=total, rng=rng, num_samples=num_samples,
                          minimum=MIN_EIGENVALUES, options=options)


def _emit(results: list[Decompression]) -> None:
    """Emit each distinct warning of the results once, as FreeDecompressionWarning."""
    seen: set[str] = set()
    for r in results:
        for msg in r.diagnostics.warnings:
            if msg not in seen:
                seen.add(msg)
                warnings.warn(f"N={r.size}: {msg}", FreeDecompressionWarning, stacklevel=3)


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
                   order=_check_order(order),
                   num_samples=check_int(options.get("num_samples", 4), "num_samples", low=1),
                   check=check_bool(options.get("check", True), "check"),
                   blocks=options.get("blocks"))


def _check_sizes(size: Any, n: int, total: int | None) -> list[int]:
    what = f"an integer > n = {n} (the target matrix size N) or an increasing sequence of them"
    if size is None or isinstance(size, (str, bytes)):
        raise TypeError(f"size must be {what}, got {size!r}")
    flat = np.atleast_1d(np.asarray(size, dtype=object)).ravel().tolist()
    if not flat:
        raise ValueError(f"size must be {what}, got an empty sequence")
    sizes = [check_int(s, "size", low=n + 1,
                       hint=f" (the target size N must exceed the sample size n={n})")
             for s in flat]
    if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"a size sequence must be increasing, got {sizes}")
    if total is not None and sizes[-1] > total:
        raise ValueError(f"target size {sizes[-1]} exceeds the matrix size {total}")
    return sizes


def _check_grid(grid: Any) -> tuple[int, np.ndarray | None]:
    """``(num, None)`` for a point count (default 2001), ``(2001, grid)`` for a grid."""
    if grid is None:
        return 2001, None
    checked = check_grid(grid)  # the one grid validator (spectra.densities)
    return (checked, None) if isinstance(checked, int) else (2001, checked)


def _check_order(order: Any) -> tuple[int, ...] | None:
    """A forced candidate order: ``None`` or a non-empty sequence of integers >= 0."""
    if order is None:
        return None
    if isinstance(order, (str, bytes)) or np.ndim(order) != 1 or len(order) == 0:
        raise TypeError("order must be a non-empty sequence of integers >= 0 (e.g. (2, 1)), "
                        f"got {order!r}")
    return tuple(check_int(k, "each entry of order", low=0) for k in order)


class _Fit(Protocol):
    """A fitted candidate: one :class:`Decompression` per size, then the final checks."""

    def result(self, N: int, num: int, grid: np.ndarray | None) -> Decompression: ...

    def finish(self, results: list[Decompression]) -> list[Decompression]: ...


# ==================================================================== free candidates
@dataclass
class _FreeFit:
    """The validated candidate and what its checks need."""

    smp: Sample
    family: str
    order: tuple
    scores: dict[str, Score]
    chosen: str | None
    diag: dict[str, Any]
    g: np.random.Generator
    opts: _Options

    @classmethod
    def create(cls, smp: Sample, method: str, g: np.random.Generator, opts: _Options,
               size: int | None = None) -> _FreeFit:
        """Validate the candidates of ``method`` (or take the forced order).

        A selected model whose estimate at ``size`` (the largest target) is impossible
        -- mass below zero for a positive semi-definite sample, an atom heavier than
        the rank bound (:mod:`freedecomp.invariants`) -- is passed over for the next
        selection: validation at ``n/2 -> n`` cannot see what only the larger ratio
        does (a Chebyshev model of a spectrum over decades validated best and put 29%
        of its mass below zero at ``N/n = 16``).
        """
        psd = smp.psd
        zero = _zero_fraction(smp)
        if opts.order is not None or method in BASELINES:
            fam = "rational" if method == "auto" else method
            order = () if method in BASELINES else opts.order
            chosen, runner, scores = None, None, {}
            reason = (f"method={method!r}" if method in BASELINES
                      else f"order {order} forced by the caller")
        else:
            if smp.n < 2 * MIN_EIGENVALUES:
                raise ValueError(f"validation needs at least {2 * MIN_EIGENVALUES} eigenvalues")
            scores = validate(smp, candidate_keys(method, zero > 0, smp), g, opts.repeats,
                              psd=psd)
            chosen, runner, reason = select_possible(smp, scores, opts.slack, size, zero)
            fam, order = scores[chosen].family, scores[chosen].order
        diag = {"method": method, "sample_size": smp.n, "family": fam, "reason": reason,
                "validation_error": scores[chosen].error if chosen else None,
                "runner_up": runner,
                "runner_up_error": scores[runner].error if runner else None,
                "validation": scores, "zero_fraction": zero}
        return cls(smp, fam, order, scores, chosen, diag, g, opts)

    def result(self, N: int, num: int, grid: np.ndarray | None) -> Decompression:
        """Decompress to size ``N``, with bands or stability from refits when checking."""
        smp = self.smp
        alpha = N / smp.n
        est = estimate(self.family, self.order, smp.blocks, alpha, psd=smp.psd, num=num,
                       grid=grid, matrices=smp.matrices)
        ev, raw = est.ev, est.raw
        d = dict(self.diag, alpha=alpha, model=est.name, warnings=[],
                 outlier_count=sum(v.shape[1] for v, _, _ in est.outliers)
                 + int(est.local[0].size),
                 mass_before_normalisation=raw.mass if raw else 1.0,
                 negative_mass=raw.negative if raw else 0.0,
                 residual=raw.residual if raw else 0.0,
                 nonfinite=raw.nonfinite if raw else 0)
        spread = _spread(self, alpha, ev.x) if self.opts.check else None
        checks = run_checks(ev, smp.pooled, alpha, psd=smp.psd,
                            zero_fraction=self.diag["zero_fraction"],
                            raw_mass=raw.mass if raw else None)
        d["checks"] = checks
        outliers = _outliers(est, spread)
        return _finish(ev, N, smp, d, spread, est, outliers)

    def finish(self, results: list[Decompression]) -> list[Decompression]:
        """Sparse-graph findings, then the free-compression check (real against Haar)."""
        if self.opts.check and self.smp.matrix is not None:
            results = _sparse_findings(self.smp, results)
        if not (self.opts.check and self.smp.matrix is not None and self.chosen is not None):
            return results
        chosen = self.chosen
        if self.family in BASELINES:  # check the best model of the flow instead
            free = [k for k, v in self.scores.items()
                    if v.family not in BASELINES and np.isfinite(v.error)]
            if not free:
                return results
            chosen = min(free, key=lambda k: self.scores[k].error)
        last = results[-1]
        diag = _free_compression_check(self.smp, self.scores, chosen, self.g,
                                       self.opts.repeats, last.diagnostics)
        return [*results[:-1], replace(last, diagnostics=diag)]


def _sparse_findings(smp: Sample, results: list[Decompression]) -> list[Decompression]:
    """Blocks of a sparse graph are not free compressions: say so on every size."""
    from .checks import sparse_block_findings

    found = sparse_block_findings(smp.matrix)
    if not found:
        return results
    msgs = tuple(f"{f.name} ({f.figure:.0%}): {f.message}" for f in found)
    return [replace(r, diagnostics=replace(
        r.diagnostics, free_compression=False, decompressible=False,
        warnings=(*r.diagnostics.warnings, *msgs))) for r in results]


def _zero_fraction(smp: Sample) -> float:
    """Fraction of exact zeros the free families treat as an atom (0 when too few)."""
    from .outliers import split_spectrum

    z = sum(split_spectrum(b, psd=True).zeros for b in smp.blocks)
    return z / smp.pooled.size


def _spread(fit: _FreeFit, alpha: float, x: np.ndarray) -> dict[str, Any]:
    """Estimates from the other samples, on the common grid.

    Several submatrices: one estimate each (bands). One sample: ``3n/4`` sub-samples
    decompressed to the same ``N`` (a stability check).
    """
    smp = fit.smp
    if len(smp.blocks) > 1:
        sets, kind = list(zip(smp.blocks, smp.matrices or [None] * len(smp.blocks),
                              strict=True)), "samples"
    else:
        k = (3 * smp.n) // 4
        sets, kind = [smp.subblock(k, fit.g) for _ in range(fit.opts.repeats)], "subsamples"
    rhos, edges, outl = [], [], []
    N = alpha * smp.n
    # refits are solved on every 4th grid point and interpolated (they only feed bands,
    # edge spreads and the stability figure, all far coarser than the grid step)
    sub = np.unique(np.concatenate([np.arange(0, x.size, 4), [x.size - 1]]))
    xs = x[sub]
    for e, M in sets:
        try:
            est = estimate(fit.family, fit.order, [e], N / e.size, psd=smp.psd, grid=xs,
                           matrices=[M])
        except FIT_ERRORS:
            continue
        outl.append(est.outliers)
        if est.raw is None:
            continue
        rs = est.ev.rho
        r = np.interp(x, xs, rs)
        r *= float(np.trapezoid(rs, xs)) / max(float(np.trapezoid(r, x)), 1e-300)
        rhos.append(r)
        iv = support_intervals(x, r)
        if iv:
            edges.append((iv[0][0], iv[-1][1]))
    return {"rhos": np.array(rhos), "edges": np.array(edges), "kind": kind,
            "outliers": outl}


def _outliers(est: Estimate, spread: dict[str, Any] | None) -> tuple[Outlier, ...]:
    """Outliers with their spread over the blocks (or over sub-block refits)."""
    out = []
    for vals, locs, side in est.outliers:
        if locs.shape[0] > 1:
            err = locs.std(axis=0, ddof=1)
        else:
            err = np.full(locs.shape[1], np.nan)
            refit = [next((lc for _, lc, s in o if s == side), None)
                     for o in (spread or {}).get("outliers", [])]
            refit = [r[0] for r in refit if r is not None and r.shape[1] == locs.shape[1]]
            if len(refit) >= 2:
                err = np.std(np.array(refit), axis=0, ddof=1)
        for j in range(locs.shape[1]):
            out.append(Outlier(float(locs[:, j].mean()), float(err[j]),
                               float(vals[:, j].mean()), side))
    values, count = est.local
    mid = float(np.median(est.ev.measure()[0]))
    out += [Outlier(float(v), float("nan"), float(v), "upper" if v > mid else "lower",
                    count=count, localised=True) for v in values]
    return tuple(sorted(out, key=lambda o: -o.location))


def _finish(ev: Any, N: int, smp: Sample, d: dict[str, Any], spread: dict[str, Any] | None,
            est: Estimate, outliers: tuple) -> Decompression:
    """Checks, edges, bands and warnings of one size of the free path."""
    x, rho = ev.x, ev.rho
    if d["nonfinite"]:
        d["warnings"].append(f"{d['nonfinite']} grid points gave no finite root (set to 0)")
    if d["residual"] > 1e-6:
        d["warnings"].append(f"root residual {d['residual']:.1e}: the solver did not converge")
    ok = d["negative_mass"] < 0.01 and abs(d["mass_before_normalisation"] - 1) < 0.02
    for c in d["checks"].values():
        if not c.passed:
            d["warnings"].append(f"check {c.name!r} failed ({c.figure:.3g} > {c.limit:g}): "
                                 f"{c.message}")
            ok = ok and not (c.severe and est.raw is not None)
    if est.raw is None:
        d["warnings"].append(
            f"the chosen candidate is the baseline {est.name!r}, not a free decompression: "
            "no model of the flow validated better on this sample")
        ok = False
    edges = support_intervals(x, rho) if est.raw is not None else []
    edge_err = [(0.5 * (x[1] - x[0]),) * 2 for _ in edges]
    bands = None
    if spread is not None and len(spread["rhos"]) >= 2:
        bands, edge_err, stable = _refit_checks(x, rho, N / smp.n, est, spread, edges,
                                                edge_err, d)
        ok = ok and stable
    if not ok:
        d["warnings"].append(
            f"decompressible=False at alpha={N / smp.n:g}: a check failed or the refits "
            f"disagree (mass before normalisation {d['mass_before_normalisation']:.3f}, "
            f"negative part {d['negative_mass']:.3f}); treat the result as unreliable")
    d["decompressible"] = bool(ok)
    d["warnings"] = tuple(d["warnings"])
    return Decompression(x=x, rho=rho, size=N, sample_size=smp.n, atoms=ev.atoms,
                         edges=edges, edge_errors=edge_err, bands=bands,
                         diagnostics=Diagnostics(**d), outliers=outliers)


def _refit_checks(x: np.ndarray, rho: np.ndarray, alpha: float, est: Estimate,
                  spread: dict[str, Any], edges: list, edge_err: list, d: dict[str, Any]
                  ) -> tuple[np.ndarray | None, list, bool]:
    """Stability figure, bands and edge errors from the refits of :func:`_spread`."""
    R = spread["rhos"]
    h = x[1] - x[0]
    # the continuous part only: scale by the bulk's own sd (outliers are checked apart)
    mass = max(float(np.trapezoid(rho, x)), 1e-300)
    mu = float(np.trapezoid(x * rho, x)) / mass
    scale = np.sqrt(max(float(np.trapezoid((x - mu) ** 2 * rho, x)) / mass, 1e-300))
    stab = float(np.mean([np.trapezoid(np.abs(np.cumsum(r - rho) * h), x) for r in R]))
    stab /= scale * mass
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
    key = (scores[chosen].family, scores[chosen].order)
    keys = [key] + ([("block", ())] if "block" in scores else [])
    haar = validate(smp, keys, g, min(repeats, 2), psd=smp.psd, haar=True, screen=np.inf,
                    keep=2)
    e_haar = haar[chosen].error if chosen in haar else min(v.error for v in haar.values())
    e_true = scores[chosen].error
    free = bool(e_true <= 1.3 * e_haar + 0.01)
    if "block" in haar and e_haar > 0 and e_true > 0:
        # a block that stays the same from n/2 to n is not a compression: the plain block
        # wins far more clearly on real sub-blocks than on Haar-rotated ones
        free = free and scores["block"].error / e_true >= 0.5 * haar["block"].error / e_haar
    warns = list(diag.warnings)
    if e_true > 0.1:
        warns.append(
            f"no model validates well (n/2->n error {e_true:.3f} sd): the sample may not be a "
            "free compression (a Gram matrix sampled by rows needs method='deformed', "
            "columns=m) or the law lies outside the model families")
    if not free:
        hint = " (try method='deformed', columns=m)" if smp.eigs.min() >= 0 else ""
        warns.append(
            f"the sample does not behave like a free compression: real sub-blocks validate "
            f"at {e_true:.3f} sd, Haar-rotated ones at {e_haar:.3f} sd{hint}")
    return replace(diag, free_compression=free and diag.free_compression is not False,
                   validation_error_haar=e_haar,
                   warnings=tuple(warns))
