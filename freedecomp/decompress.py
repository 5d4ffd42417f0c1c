r"""``decompress``: the law of an ``N x N`` matrix from ``n x n`` principal submatrices.

Free decompression (THEORY.md section 4) evolves the Stieltjes transform along
:math:`\partial_t m = -m + \partial_z m / m`, :math:`t = \log(N/n)`, whose
characteristics are :math:`z = z_0 + (1-\alpha)/m_0(z_0)`, :math:`m_\alpha = m_0/\alpha`.
A model of the sample's law is fitted (rational R-transform, algebraic curve or
Chebyshev density), decompressed exactly, and evaluated by one Newton homotopy.
The model and its order are chosen by validation: random ``n/2`` sub-samples are
decompressed to ``n``, where the answer (the sample) is known.

References
----------
.. [1] S. Ameli, C. van der Heide, L. Hodgkinson and M. W. Mahoney, "Spectral estimation
   with free decompression", NeurIPS 2025, arXiv:2506.11994.
.. [2] S. Ameli et al., "Free decompression with algebraic spectral curves",
   arXiv:2605.03634, 2026.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from spectra.probes import as_rng

from . import models as _m
from .result import Decompression, measure_from_grid, support_intervals, wasserstein1
from .sample import Sample, prepare_sample

__all__ = ["CANDIDATES", "MIN_EIGENVALUES", "decompress", "evaluate_model"]

MIN_EIGENVALUES = 16
CANDIDATES: dict[str, list[tuple]] = {
    "rational": [(1, 0), (1, 1), (2, 1), (1, 2), (2, 2), (3, 2)],
    "algebraic": [(1, 2), (1, 3), (2, 2), (2, 3)],
    "free": [(4,), (8,), (16,)],
}
_FITTERS = {"rational": _m.fit_rational, "algebraic": _m.fit_algebraic, "free": _m.fit_chebyshev}
_METHODS = ("auto", "rational", "algebraic", "free", "deformed")


def _fit(family: str, order: tuple, eigs: np.ndarray) -> _m.CurveModel:
    return _FITTERS[family](eigs, *order)


def evaluate_model(model: Any, alpha: float, *, num: int = 2001, grid: Any = None
                   ) -> dict[str, Any]:
    """Decompressed density of ``model`` on an adaptive grid (or the given one).

    A coarse pass over ``mean +- L sd`` (``L`` doubled until the mass is captured)
    locates the support; the fine grid spans it with a small margin. The density is
    ``max(Im m, 0)/pi``; non-finite values are set to zero and counted.

    Returns
    -------
    dict
        ``x, rho, atoms, mass`` (before normalisation), ``negative`` (mass of the
        clipped negative part), ``residual`` (max relative residual), ``nonfinite``.
    """
    mean = model.shift
    sd = model.scale * np.sqrt(alpha)
    atoms = model.atoms(alpha)
    amass = sum(w for _, w in atoms)
    if grid is None:
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
        x = np.linspace(xc[pos[0]] - 2 * h, xc[pos[-1]] + 2 * h, num)
    else:
        x = np.asarray(grid, dtype=float)
    m, res = model.solve(alpha, x)
    bad = ~np.isfinite(m)
    rho = np.where(bad, 0.0, m.imag) / np.pi
    negative = float(np.trapezoid(np.maximum(-rho, 0.0), x))
    rho = _drop_atoms(x, np.maximum(rho, 0.0), atoms, sd)
    mass = float(np.trapezoid(rho, x)) + amass
    return {"x": x, "rho": rho, "atoms": atoms, "mass": mass, "negative": negative,
            "residual": float(np.max(np.where(np.isfinite(res), res, 1.0))),
            "nonfinite": int(bad.sum())}


def _drop_atoms(x: np.ndarray, rho: np.ndarray, atoms: list, sd: float) -> np.ndarray:
    for a, _ in atoms:
        rho = np.where(np.abs(x - a) < 1e-6 * sd, 0.0, rho)
    return rho


def _normalise(ev: dict[str, Any]) -> tuple[np.ndarray, list]:
    """Scale the continuous part so that it and the atoms have unit mass."""
    amass = sum(w for _, w in ev["atoms"])
    cont = float(np.trapezoid(ev["rho"], ev["x"]))
    atoms = list(ev["atoms"])
    if amass >= 1.0:  # keep a sliver of continuous mass rather than dividing by zero
        atoms = [(a, w / (amass + 1e-9)) for a, w in atoms]
        amass = sum(w for _, w in atoms)
    return ev["rho"] * ((1.0 - amass) / cont), atoms


def _w1(ev: dict[str, Any], eigs: np.ndarray) -> float:
    nodes, weights = measure_from_grid(ev["x"], ev["rho"], ev["atoms"])
    return wasserstein1(nodes, weights, eigs)


def _validation_grid(eigs: np.ndarray, num: int = 256) -> tuple[np.ndarray, float]:
    """Fixed grid for ``n/2 -> n`` validation: the sample's range padded by half an sd."""
    pad = 0.5 * float(eigs.std())
    return np.linspace(float(eigs[0]) - pad, float(eigs[-1]) + pad, num), pad


def _score(fam: str, order: tuple, sub: np.ndarray, target: np.ndarray, grid: np.ndarray,
           pad: float, sd: float) -> tuple[float, _m.CurveModel | None]:
    """Validation error of one candidate on one sub-sample (W1 in sd units).

    The decompressed law is evaluated on the fixed window ``grid`` (the target's range
    padded by ``pad``); when more than 1% of its mass falls outside, it is re-evaluated
    on its own adaptive support grid so that no mass is lost from the transport cost.
    A clearly non-physical law (negative part, or mass off by more than 5%) is
    penalised by one sd.
    """
    try:
        model = _fit(fam, order, sub)
        alpha = target.size / sub.size
        ev = evaluate_model(model, alpha, grid=grid)
        if ev["mass"] < 0.99:
            ev = evaluate_model(model, alpha, num=grid.size)
        bad = ev["negative"] > 0.02 or abs(ev["mass"] - 1) > 0.05
        return _w1(ev, target) / sd + (1.0 if bad else 0.0), model
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
        return np.inf, None


def _validate(sample: Sample, families: Sequence[str], rng: np.random.Generator,
              repeats: int, haar: bool = False, orders: Sequence[tuple] | None = None,
              screen: float = 2.5, keep: int = 5) -> dict[str, dict[str, Any]]:
    """Validation error (W1 in sample sd units) of the candidates, ``n/2 -> n``.

    Two stages: every candidate is scored on the first sub-sample (screening); those
    within ``1.3`` times the best screening error, and the best ``keep`` of those within
    ``screen`` times it, are scored on the remaining ``repeats - 1`` and their ``error``
    is the mean over all sub-samples. Screened-out candidates keep their one-sample
    error and are marked
    ``screened=True`` (they are not eligible for selection).
    """
    subs = [sample.subsample(sample.n // 2, rng, haar=haar) for _ in range(repeats)]
    target = sample.eigs
    sd = float(target.std())
    grid, pad = _validation_grid(target)
    cands = [(fam, o) for fam in families for o in (orders or CANDIDATES[fam])]
    first = {}
    for fam, order in cands:
        first[(fam, order)] = _score(fam, order, subs[0], target, grid, pad, sd)
    errs1 = {k: v[0] for k, v in first.items()}
    best1 = min(errs1.values())
    ranked = sorted((k for k in cands if np.isfinite(errs1[k])), key=errs1.get)
    shortlist = [k for i, k in enumerate(ranked)
                 if errs1[k] <= 1.3 * best1 or (i < keep and errs1[k] <= screen * best1)]
    out: dict[str, dict[str, Any]] = {}
    for key in cands:
        fam, order = key
        errs = [errs1[key]]
        model = first[key][1]
        if key in shortlist:
            errs += [_score(fam, order, sub, target, grid, pad, sd)[0] for sub in subs[1:]]
        name = model.name if model is not None else f"{fam}{order}"
        out[name] = {"family": fam, "order": order, "error": float(np.mean(errs)),
                     "screened": key not in shortlist and len(subs) > 1,
                     "complexity": model.complexity if model is not None else 99}
    return out


def _select(scores: dict[str, dict[str, Any]], slack: float) -> tuple[str, str | None, str]:
    """Simplest candidate whose validation error is within ``slack`` of the best."""
    finite = {k: v for k, v in scores.items()
              if np.isfinite(v["error"]) and not v.get("screened", False)}
    if not finite:
        raise ValueError("no model could be fitted to the sample (all validations failed)")
    best = min(v["error"] for v in finite.values())
    ok = [k for k, v in finite.items() if v["error"] <= best * (1 + slack)]
    chosen = min(ok, key=lambda k: (finite[k]["complexity"], finite[k]["error"]))
    others = sorted((k for k in finite if k != chosen), key=lambda k: finite[k]["error"])
    why = (f"{chosen} is the simplest model whose n/2->n validation error "
           f"({finite[chosen]['error']:.2e} sd) is within {slack:.0%} of the best "
           f"({best:.2e} sd) among {len(finite)} candidates validated on every "
           f"sub-sample (the other {len(scores) - len(finite)} failed or were screened out "
           "on the first)")
    return chosen, (others[0] if others else None), why


def decompress(sample: Any, size: int | Sequence[int], *, method: str = "auto",
               grid: Any = None, rng: Any = None, columns: int | None = None,
               n: int | None = None, total: int | None = None,
               **options: Any) -> Decompression:
    r"""Estimate the spectral law of an ``N x N`` matrix from ``n x n`` samples of it.

    Parameters
    ----------
    sample : array_like or callable
        Eigenvalues of a principal submatrix (1-d), a dense symmetric principal
        submatrix (2-d), several of them (3-d, or a list), or a block sampler
        ``callable(indices) -> dense principal block`` (then ``n`` and ``total`` are
        required; ``options["num_samples"]`` blocks are drawn, default 4).
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
        free-compression and stability checks, default True).

    Returns
    -------
    Decompression

    Raises
    ------
    ValueError
        Bad sizes (``N <= n``), non-finite or non-symmetric input, fewer than
        ``MIN_EIGENVALUES`` eigenvalues, a degenerate (all-equal) spectrum.
    TypeError
        A sample of unsupported type.

    Examples
    --------
    >>> import numpy as np
    >>> from freedecomp import decompress, laws
    >>> A = laws.MarchenkoPastur(0.5).sample_matrix(400, rng=0)
    >>> res = decompress(A[:100, :100], 400, rng=1)
    >>> bool(abs(res.density.weights.sum() - 1) < 1e-12)
    True
    """
    unknown = set(options) - {"repeats", "slack", "order", "num_samples", "check"}
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    g = as_rng(rng)
    smp = prepare_sample(sample, n=n, total=total, rng=g,
                         num_samples=int(options.get("num_samples", 4)),
                         minimum=MIN_EIGENVALUES)
    sizes = _check_sizes(size, smp.n, smp.total)
    num = 2001 if grid is None or np.ndim(grid) == 0 else None
    if grid is not None and np.ndim(grid) == 0:
        num, grid = int(grid), None
    if method == "deformed" or (method == "auto" and columns is not None):
        from .deformed import decompress_deformed

        return decompress_deformed(smp, sizes, columns=columns, grid=grid, num=num or 2001,
                                   rng=g, check=options.get("check", True),
                                   reason="method='deformed'" if method == "deformed" else
                                   "columns given: a Gram matrix sampled by rows is not a "
                                   "free compression, so the deformed law is used")
    return _decompress_free(smp, sizes, method, grid, num or 2001, g, options)


def _check_sizes(size: Any, n: int, total: int | None) -> list[int]:
    sizes = [int(s) for s in np.atleast_1d(size)]
    if any(s != float(t) for s, t in zip(sizes, np.atleast_1d(size), strict=True)):
        raise ValueError("sizes must be integers")
    if any(s <= n for s in sizes):
        raise ValueError(f"target sizes must exceed the sample size n={n}, got {sizes}")
    if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"a size sequence must be increasing, got {sizes}")
    if total is not None and sizes[-1] > total:
        raise ValueError(f"target size {sizes[-1]} exceeds the matrix size {total}")
    return sizes


def _decompress_free(smp: Sample, sizes: list[int], method: str, grid: Any, num: int,
                     g: np.random.Generator, options: dict) -> Decompression:
    repeats = int(options.get("repeats", 3))
    families = ["rational", "algebraic", "free"] if method == "auto" else [method]
    diag: dict[str, Any] = {"method": method, "sample_size": smp.n, "warnings": []}
    if "order" in options:
        fam = families[0] if method != "auto" else "rational"
        order = tuple(options["order"])
        chosen, runner, scores = None, None, {}
        reason = f"order {order} forced by the caller"
    else:
        if smp.n < 2 * MIN_EIGENVALUES:
            raise ValueError(f"validation needs at least {2 * MIN_EIGENVALUES} eigenvalues")
        scores = _validate(smp, families, g, repeats)
        chosen, runner, reason = _select(scores, float(options.get("slack", 0.15)))
        fam, order = scores[chosen]["family"], scores[chosen]["order"]
    model = _fit(fam, order, smp.pooled)
    diag.update(model=model.name, family=fam, reason=reason,
                validation_error=scores[chosen]["error"] if chosen else None,
                runner_up=runner, runner_up_error=scores[runner]["error"] if runner else None,
                validation=scores)
    results = []
    for N in sizes:
        alpha = N / smp.n
        ev = evaluate_model(model, alpha, num=num, grid=grid)
        d = dict(diag, alpha=alpha, mass_before_normalisation=ev["mass"],
                 negative_mass=ev["negative"], residual=ev["residual"],
                 nonfinite=ev["nonfinite"], warnings=list(diag["warnings"]))
        rho, atoms = _normalise(ev)
        extra = _spread(smp, fam, order, alpha, ev["x"], g, repeats) \
            if options.get("check", True) else None
        results.append(_finish(ev["x"], rho, atoms, N, smp, d, extra, model.scale))
    if options.get("check", True) and smp.matrix is not None and chosen is not None:
        _free_compression_check(smp, scores, chosen, g, repeats, results[-1].diagnostics)
    last = results[-1]
    return Decompression(**{**last.__dict__, "flow": tuple(results)})


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
            ev = evaluate_model(_fit(fam, order, e), N / e.size, grid=xs)
            rs, _ = _normalise(ev)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            continue
        r = np.interp(x, xs, rs)
        r *= float(np.trapezoid(rs, xs)) / max(float(np.trapezoid(r, x)), 1e-300)
        rhos.append(r)
        iv = support_intervals(x, r)
        if iv:
            edges.append((iv[0][0], iv[-1][1]))
    return {"rhos": np.array(rhos), "edges": np.array(edges), "kind": kind,
            "sizes": [e.size for e in sets]}


def _finish(x: np.ndarray, rho: np.ndarray, atoms: list, N: int, smp: Sample, d: dict,
            extra: dict | None, scale: float) -> Decompression:
    if d["nonfinite"]:
        d["warnings"].append(f"{d['nonfinite']} grid points gave no finite root (set to 0)")
    if d["residual"] > 1e-6:
        d["warnings"].append(f"root residual {d['residual']:.1e}: the solver did not converge")
    ok = d["negative_mass"] < 0.01 and abs(d["mass_before_normalisation"] - 1) < 0.02
    edges = support_intervals(x, rho)
    edge_err = [(0.5 * (x[1] - x[0]),) * 2 for _ in edges]
    bands = None
    if extra is not None and len(extra["rhos"]) >= 2:
        R = extra["rhos"]
        sd_n = float(np.sqrt(N / smp.n)) * scale
        stab = float(np.mean([np.trapezoid(np.abs(np.cumsum(r - rho) * (x[1] - x[0])), x)
                              for r in R])) / sd_n
        d["stability"] = stab
        if extra["kind"] == "samples":
            bands = np.stack([np.minimum(R.min(0), rho), np.maximum(R.max(0), rho)])
        if len(extra["edges"]) >= 2 and len(edges) == 1:
            factor = 1.0 if extra["kind"] == "samples" else 0.5
            s = factor * extra["edges"].std(0, ddof=1) + 0.5 * (x[1] - x[0])
            edge_err = [(float(s[0]), float(s[1]))]
        if stab > 0.05:
            ok = False
            d["warnings"].append(
                f"refits on other (sub)samples disagree by {stab:.2f} sd in W1: the sample "
                f"does not pin down the law at alpha={N / smp.n:g}")
    if not ok:
        d["warnings"].append(
            f"alpha={N / smp.n:g} looks past what the sample supports (mass before "
            f"normalisation {d['mass_before_normalisation']:.3f}, negative part "
            f"{d['negative_mass']:.3f}); treat the result as unreliable")
    d["decompressible"] = ok
    return Decompression(x=x, rho=rho, size=N, sample_size=smp.n, atoms=atoms, edges=edges,
                         edge_errors=edge_err, bands=bands, diagnostics=d)


def _free_compression_check(smp: Sample, scores: dict, chosen: str, g: np.random.Generator,
                            repeats: int, d: dict) -> None:
    """Compare validation on real sub-blocks with validation on Haar compressions."""
    fam = scores[chosen]["family"]
    order = scores[chosen]["order"]
    haar = _validate(smp, [fam], g, repeats, haar=True, orders=[order])
    e_haar = min(v["error"] for v in haar.values())
    e_true = scores[chosen]["error"]
    d["free_compression"] = bool(e_true <= 1.3 * e_haar + 0.01)
    d["validation_error_haar"] = e_haar
    if e_true > 0.1:
        d["warnings"].append(
            f"no model validates well (n/2->n error {e_true:.3f} sd): the sample may not be a "
            "free compression (a Gram matrix sampled by rows needs method='deformed', "
            "columns=m) or the law lies outside the model families")
    if not d["free_compression"]:
        hint = " (try method='deformed', columns=m)" if smp.eigs.min() >= 0 else ""
        d["warnings"].append(
            f"the sample does not behave like a free compression: real sub-blocks validate "
            f"at {e_true:.3f} sd, Haar-rotated ones at {e_haar:.3f} sd{hint}")


Sampler = Callable[[np.ndarray], np.ndarray]
