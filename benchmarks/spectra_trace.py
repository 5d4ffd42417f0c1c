"""Benchmark: trace estimators at a fixed budget of 100 products.

Two dense PSD matrices ``Q diag(lam) Q^T`` (Haar ``Q``): a decaying spectrum
``lam_i = i^-2`` and a flat one (``lam_i`` uniform in [1, 2]). For each method the
relative error ``|t - tr(A)| / tr(A)`` over 50 seeds (mean, standard deviation, 90th
percentile), the mean reported standard error, the fraction of seeds whose
``value +- 2 stderr`` covers the truth, and the wall time per call. Each method runs
with its default probe (``probe=None``: Rademacher for Hutchinson, the sphere with the
improved, normalised residual for Hutch++, XTrace and XNysTrace) and with Rademacher.

Targets (issue 2): XTrace at least 10x more accurate than Hutchinson on the decaying
spectrum; no method worse than Hutchinson on the flat one.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

import spectra
from spectra.testing import matrix_from_eigenvalues

METHODS = ("hutchinson", "hutchpp", "xtrace", "xnystrace")
#: (method, probe) rows of the table; ``None`` is the method's default probe
RUNS = (("hutchinson", None), ("hutchpp", None), ("hutchpp", "rademacher"),
        ("xtrace", None), ("xtrace", "rademacher"), ("xnystrace", None),
        ("xnystrace", "rademacher"))
BUDGET = 100


def _blas_one_thread():
    """Time single-threaded BLAS: stable on a shared 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _measure(A, truth: float, method: str, probe: str | None, seeds: int) -> dict:
    op = spectra.as_operator(A, symmetric=True, psd=True)
    spectra.trace(op, BUDGET, method=method, probe=probe, rng=12345)  # warm-up
    errs, ses, hits, times = [], [], [], []
    for s in range(seeds):
        t0 = time.perf_counter()
        est = spectra.trace(op, BUDGET, method=method, probe=probe, rng=s)
        times.append(time.perf_counter() - t0)
        errs.append(abs(est.value - truth) / truth)
        ses.append(est.stderr / truth)
        hits.append(abs(est.value - truth) <= 2 * est.stderr)
        assert est.num_matvecs == BUDGET
    errs = np.array(errs)
    return {"mean": errs.mean(), "std": errs.std(ddof=1), "p90": np.quantile(errs, 0.9),
            "se": float(np.mean(ses)), "cover": float(np.mean(hits)),
            "ms": 1e3 * float(np.median(times))}


def run(quick: bool = False) -> str:
    """Run the benchmark and return a Markdown section."""
    n, seeds = (500, 10) if quick else (1000, 50)
    cases = [
        ("decaying, lam_i = i^-2", 1.0 / np.arange(1, n + 1) ** 2),
        ("flat, lam_i ~ U[1, 2]", np.random.default_rng(0).uniform(1.0, 2.0, n)),
    ]
    lines = [
        f"## Trace estimators at {BUDGET} products (dense n = {n}, {seeds} seeds)",
        "",
        "`spectra.trace(op, 100, method=..., probe=...)`; *probe* `default` is "
        "`probe=None` (Rademacher for Hutchinson, the sphere with the improved, normalised "
        "residual for the others). Relative error `|t - tr A| / tr A` over the seeds; "
        "*stderr* is the mean reported standard error (relative; the delete-one jackknife "
        "for XTrace/XNysTrace), *cover* the fraction of seeds with `|t - tr A| <= 2 stderr`; "
        "time is the median per call with one BLAS thread (the dense products dominate).",
        "",
        "| spectrum | method | probe | mean rel. error | std | 90th pct | stderr | cover "
        "| vs Hutchinson | ms / call |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    with _blas_one_thread():
        for name, lam in cases:
            A = matrix_from_eigenvalues(lam, rng=1)
            truth = float(lam.sum())
            res = {(m, p): _measure(A, truth, m, p, seeds) for m, p in RUNS}
            base = res[("hutchinson", None)]["mean"]
            for m, p in RUNS:
                r = res[(m, p)]
                lines.append(
                    f"| {name} | {m} | {p or 'default'} | {r['mean']:.2e} | {r['std']:.1e} "
                    f"| {r['p90']:.1e} | {r['se']:.1e} | {r['cover']:.2f} "
                    f"| {base / r['mean']:.2f}x | {r['ms']:.1f} |"
                )
            if name.startswith("decaying"):
                gain = base / res[("xtrace", None)]["mean"]
                verdicts.append(f"- XTrace vs Hutchinson on the decaying spectrum: {gain:.0f}x "
                                f"more accurate (target >= 10x): "
                                f"{'met' if gain >= 10 else 'NOT met'}.")
            else:
                k = BUDGET // 2
                worse = [m for m in METHODS[1:] if res[(m, None)]["mean"] > base]
                verdicts.append(
                    "- Flat spectrum, default-probe methods with a larger mean error than "
                    "Hutchinson (target: none): "
                    + (", ".join(f"{m} ({res[(m, None)]['mean'] / base:.2f}x the error)"
                                 for m in worse) if worse else "none")
                    + f" ({seeds} seeds: a ratio within about 1 +- {2 / np.sqrt(seeds):.2f} "
                    f"is not resolved). XTrace spends k = {k} of its products on A Q, which "
                    f"on a flat spectrum only make the trace of a {k}-dimensional subspace "
                    "exact; its residual rests on k probes against Hutchinson's 2k, so its "
                    f"error is about sqrt(2) (1 - k/n) = {np.sqrt(2) * (1 - k / n):.2f}x "
                    "Hutchinson's by design."
                )
    lines += ["", *verdicts]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
