"""Why ``decompress(method="auto")`` chose what it chose on the realistic suite, per seed.

For each case, block ratio and seed (the blocks of ``bench_freedecomp.py realistic``),
``decompress(block, N)`` with defaults is run and, for every candidate that validated,
its estimate at ``N`` is scored against the exact spectrum. Printed per seed: the chosen
candidate, its W1/sd over Nystrom-pad's (the truth at N), and the best validated
candidates with their ``n/2 -> n`` validation error (mean over the sub-samples; the
per-sub-sample errors in brackets) and their true W1/sd at ``N``.

Run: ``python benchmarks/fd_selection.py [cases] [--ratios 8,16] [--seeds 5] [--top 6]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fd_realistic  # noqa: E402
from bench_freedecomp import _index_sets  # noqa: E402

from freedecomp import decompress  # noqa: E402
from freedecomp.candidates import FIT_ERRORS, estimate  # noqa: E402
from spectra.distances import wasserstein1  # noqa: E402


def explain(name: str, ratio: int, seed: int, top: int = 6) -> list[str]:
    """The lines of one (case, ratio, seed)."""
    case = fd_realistic.load_case(name)
    A, truth, N = case.matrix, case.eigenvalues, case.size
    sd = float(truth.std())
    idx = _index_sets(N, N // ratio, name, ratio, seed)[0]
    B = A[np.ix_(idx, idx)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = decompress(B, N, rng=seed)
    d = r.diagnostics
    e = np.linalg.eigvalsh(B)
    psd = bool(e.min() >= -1e-10 * np.abs(e).max())  # the rule of freedecomp's Sample.psd
    scores = d["validation"]
    true = {}
    for k, s in scores.items():
        if not np.isfinite(s.error):
            continue
        try:
            est = estimate(s.family, s.order, [e], N / e.size, psd=psd, matrices=[B])
        except FIT_ERRORS:
            continue
        x, w = est.ev.measure()
        true[k] = wasserstein1(x, truth, w) / sd
    ours = wasserstein1(r.density, truth) / sd
    base = min(true.get("nystrom-pad", np.inf), true.get("block", np.inf))
    lines = [f"{name} N/{ratio} seed {seed}: chosen {d['model']}, W1/sd {ours:.4g} = "
             f"{ours / base:.2f} x the better baseline"]
    for k in sorted((k for k in scores if np.isfinite(scores[k].error)),
                    key=lambda k: scores[k].error)[:top]:
        s = scores[k]
        runs = ", ".join(f"{x:.4f}" for x in s.runs)
        lines.append(f"    {k:34s} validation {s.error:.4f} [{runs}]"
                     f"{' (screened)' if s.screened else ''}; true W1/sd "
                     f"{true.get(k, np.nan):.4g}")
    return lines


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("cases", nargs="?", default=",".join(fd_realistic.CASES))
    p.add_argument("--ratios", default="8,16")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--top", type=int, default=6)
    a = p.parse_args(argv)
    print(f"load {os.getloadavg()}", flush=True)
    for name in a.cases.split(","):
        for ratio in (int(x) for x in a.ratios.split(",")):
            for seed in range(a.seeds):
                print("\n".join(explain(name, ratio, seed, a.top)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
