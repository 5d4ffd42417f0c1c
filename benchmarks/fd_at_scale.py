"""Free decompression at scale: operator blocks from kernels and model curvature.

Run: ``.venv/bin/python benchmarks/fd_at_scale.py [--quick] [--N 16000]
[--part kernel,scaling,ggn] [--write]`` (or ``benchmarks/bench_freedecomp.py at-scale``);
``fd_at_scale.py truth 4000 8000 16000`` fills the truth cache first. Prints a Markdown
section (``--write``: also into ``docs/bench/freedecomp.md`` between its ``at-scale``
markers) and writes two figures into ``docs/img/`` (``fd_at_scale_kernel.png``,
``fd_at_scale_ggn.png``).

Kernel part: the RBF kernel (median bandwidth) of ``N`` Gaussian-mixture points
(10 clusters, 8 dimensions), truth by one dense ``eigvalsh`` (cached, with the seconds
it took, in ``$IMPALPABLE_BENCH_CACHE``, default ``~/.cache/impalpable-bench``).
``freedecomp.decompress`` on the block sampler ``kernel_blocks`` (block spectra, its
validation on real sub-blocks, the fit) with 4 blocks of ``n = N/8`` and ``N/4`` and 2
of ``N/2`` (2000, 4000 and 8000 at ``N = 16000``: dense ``eigvalsh`` up to
``freedecomp.blocks.DENSE_MAX``, deflated SLQ with the adaptive budget above), against
Nystrom-pad (one block's spectrum times ``N/n`` padded with zeros) and against deflated
SLQ on the full ``N x N`` operator with the steps that fit in the same wall time as
each decompression run. Metrics: W1 / sd(truth), the mean relative error of the top-10
eigenvalues, the relative error of ``log det(K + rho I)`` at ``rho = 1e-3`` (the mean
eigenvalue is 1), and wall seconds.

Scaling part: the seconds of one kernel product against the size (the ``n^2`` law that
sets the balance: a full-operator step costs ``(N/n)^2`` block steps), and four dense
``n = 2000`` blocks against full-operator SLQ at equal time for ``N = 4000, 8000,
16000``: where the crossover lies.

GGN part: a 64-32-10 tanh MLP trained briefly on the full sklearn digits (1797
points), the GGN of its cross-entropy over all the data (``P = 2410``, dense truth from
``P`` GGN products), and free decompression of the data-space Gram from 10% and 25%
data subsamples (:func:`hessian.extrapolated_density`), against SLQ on the full-data
GGN with growing budgets: the time SLQ needs to reach the same W1.

BLAS is limited to one thread (set before numpy is imported): the machine is shared;
the kernel products use Numba's threads (both cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("IMPALPABLE_BENCH_CACHE",
                          Path.home() / ".cache" / "impalpable-bench"))
IMG = ROOT / "docs" / "img"

import spectra  # noqa: E402
from freedecomp import decompress  # noqa: E402
from freedecomp.blocks import block_spectrum  # noqa: E402
from freedecomp.samplers import kernel_blocks  # noqa: E402
from spectra.distances import wasserstein1  # noqa: E402

RIDGE = 1e-3


def gaussian_mixture(N: int, d: int = 8, clusters: int = 10, seed: int = 0) -> np.ndarray:
    """``N`` points of a Gaussian mixture (the data of ``examples/kernel_spectrum.py``)."""
    g = np.random.default_rng(seed)
    centres = 2.0 * g.standard_normal((clusters, d))
    widths = g.uniform(0.5, 1.5, clusters)
    label = g.integers(0, clusters, N)
    return centres[label] + widths[label, None] * g.standard_normal((N, d))


def kernel_truth(N: int) -> tuple[np.ndarray, float]:
    """Exact eigenvalues of the RBF kernel of ``gaussian_mixture(N)`` (cached), and seconds."""
    path = CACHE / f"rbf_mixture_{N}.npz"
    if path.exists():
        z = np.load(path)
        return z["lam"], float(z["seconds"])
    K = spectra.kernel_operator(gaussian_mixture(N), "rbf")
    t0 = time.perf_counter()
    A = K.block(np.arange(N), np.arange(N))
    lam = np.linalg.eigvalsh(A, UPLO="L")
    sec = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, lam=lam, seconds=sec, bandwidth=K.bandwidth)
    return lam, sec


# ------------------------------------------------------------------ metrics
def _top_from_law(law, N: int, k: int = 10) -> np.ndarray:
    """The top ``k`` eigenvalues a law predicts for an ``N x N`` matrix (midpoint quantiles)."""
    return np.asarray(law.quantile((N - np.arange(k)[::-1] - 0.5) / N), float)


def _metrics(lam: np.ndarray, nodes, weights, top: np.ndarray) -> dict:
    N, sd = lam.size, float(lam.std())
    ld_true = float(np.sum(np.log(lam.clip(0) + RIDGE)))
    ld = N * float(np.sum(weights * np.log(np.clip(nodes, 0, None) + RIDGE)))
    return {"w1": wasserstein1(nodes, lam, weights) / sd,
            "top10": float(np.mean(np.abs(top / lam[-10:] - 1))),
            "logdet": ld / ld_true - 1}


def _law_metrics(lam: np.ndarray, res) -> dict:
    d = res.density
    return _metrics(lam, d.nodes, d.weights, _top_from_law(res, lam.size))


def _eig_metrics(lam: np.ndarray, e: np.ndarray) -> dict:
    e = np.sort(e)
    return _metrics(lam, e, np.full(e.size, 1.0 / e.size), e[-10:])


def _density_metrics(lam: np.ndarray, den) -> dict:
    return _metrics(lam, den.nodes, den.weights, _top_from_law(den, lam.size))


# ------------------------------------------------------------------ kernel part
def _blocks_run(kb, N: int, n: int, blocks: int, seed: int) -> dict:
    """``decompress`` on the block sampler (block spectra, validation, fit), timed."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        res = decompress(kb, N, n=n, total=N, num_samples=blocks, rng=seed,
                         blocks={"progress": False})
    return {"res": res, "seconds": time.perf_counter() - t0, "blocks": blocks,
            "warnings": [str(w.message) for w in caught
                         if not issubclass(w.category, DeprecationWarning)]}


def _nystrom(kb, n: int, seed: int) -> tuple[np.ndarray, float, str]:
    """One block's spectrum (dense or adaptive SLQ), times ``N/n`` and padded with zeros."""
    g = np.random.default_rng(seed)
    t0 = time.perf_counter()
    s = block_spectrum(kb(np.sort(g.choice(kb.total, n, replace=False))), rng=g)
    sec = time.perf_counter() - t0
    return np.concatenate([np.zeros(kb.total - n), s.eigs * (kb.total / n)]), sec, s.method


def _slq_equal_time(K, budget: float, seed: int) -> tuple:
    """Deflated SLQ on the full operator with as many steps as ``budget`` seconds allow.

    A deflated run of ``k`` steps costs ``k`` one-column products (the pilot) and ``k``
    nine-column ones (the other probes); both are timed once, and the steps fill 90% of
    the budget (the recurrence and reorthogonalisation take the rest); at least 4.
    """
    probes = 10
    cost = 0.0
    for p in (1, probes - 1):
        V = np.ones((K.shape[0], p))
        t0 = time.perf_counter()
        K.matmat(V)
        cost += time.perf_counter() - t0
    steps = int(max(4, min(300, 0.9 * budget / cost)))
    t0 = time.perf_counter()
    den = spectra.density(K, num_probes=probes, num_steps=steps, rng=seed)
    return den, time.perf_counter() - t0, steps


def kernel_part(N: int, sizes: tuple, blocks: dict, seed: int = 0) -> tuple[str, dict]:
    """Markdown table and figure of the kernel part (one N, several block sizes)."""
    lam, t_truth = kernel_truth(N)
    kb = kernel_blocks(gaussian_mixture(N), "rbf")
    load = os.getloadavg()[0]
    rows, runs, slq = [], {}, {}
    for n in sizes:
        r = _blocks_run(kb, N, n, blocks[n], seed)
        runs[n] = r
        d = r["res"].diagnostics
        est = d.get("block_estimates") or ()
        method = est[0]["method"] if est else "?"
        err = max((e["relative_error"] for e in est), default=0.0)
        prods = sum(e["num_matvecs"] for e in est)
        m = _law_metrics(lam, r["res"])
        carried = (d.get("slq_error") or 0) / lam.std()
        cover = (f" (covers the W1 error: {'yes' if m['w1'] <= carried else 'NO'})"
                 if carried else "")
        rows.append((
            f"free decompression, {blocks[n]} x n={n:,} ({method})", m,
            r["seconds"], f"{d.get('model')}; decompressible={d.get('decompressible')}; "
            f"block SLQ err {err:.1e} sd, {prods} products; slq_error "
            f"{carried:.1e} sd{cover}; {len(r['warnings'])} warnings"))
        nys, t_nys, how = _nystrom(kb, n, seed)
        rows.append((f"Nystrom-pad, one n={n:,} block ({how})", _eig_metrics(lam, nys),
                             t_nys, "one block"))
        den, t_slq, steps = _slq_equal_time(kb.operator, r["seconds"], seed)
        slq[n] = den
        rows.append((f"SLQ on the full {N:,}x{N:,} operator, 10 probes x {steps} steps "
                             f"(time of n={n:,})", _density_metrics(lam, den), t_slq,
                             f"{den.num_matvecs} products"))
    lines = [f"### RBF kernel, N = {N:,} (Gaussian mixture, d = 8)", "",
             f"Truth: dense `eigvalsh`, {t_truth:.0f} s once (cached outside the repository). "
             f"Load average at start: {load:.1f} on {os.cpu_count()} cores "
             "(shared machine).", "",
             "| method | W1 / sd | top-10 rel. error | log det(K + 1e-3 I) rel. error | "
             "wall s | notes |", "|---|---|---|---|---|---|"]
    for name, m, sec, note in rows:
        lines.append(f"| {name} | {m['w1']:.3g} | {m['top10']:.3g} | {m['logdet']:+.3g} | "
                     f"{sec:.1f} | {note} |")
    _kernel_figure(lam, runs, slq, N)
    return "\n".join(lines + [""]), {"rows": rows}


def pass_costs(sizes: tuple = (2000, 4000, 8000, 16000), reps: int = 3) -> str:
    """Seconds of one kernel product (1 and 10 columns) at each size: the n^2 law."""
    X = gaussian_mixture(max(sizes))
    kb = kernel_blocks(X, "rbf")
    lines = ["| rows | 1 column s | 10 columns s | 10 columns / n^2 (ns) |",
             "|---|---|---|---|"]
    for n in sizes:
        op = kb(np.arange(n))
        t = {}
        for p in (1, 10):
            V = np.ones((n, p))
            op.matmat(V)
            t0 = time.perf_counter()
            for _ in range(reps):
                op.matmat(V)
            t[p] = (time.perf_counter() - t0) / reps
        lines.append(f"| {n:,} | {t[1]:.4f} | {t[10]:.4f} | {1e9 * t[10] / n**2:.2f} |")
    return "\n".join(lines)


def crossover(Ns: tuple = (4000, 8000, 16000), n: int = 2000, blocks: int = 4,
              seed: int = 0) -> str:
    """Fixed blocks (``blocks`` x ``n``, dense) against full-operator SLQ at equal time."""
    lines = ["| N | decompression W1/sd | s | full SLQ W1/sd (same time) | steps | "
             "decompression top-10 | SLQ top-10 | decompression log det | SLQ log det |",
             "|---|---|---|---|---|---|---|---|---|"]
    for N in Ns:
        lam, _ = kernel_truth(N)
        kb = kernel_blocks(gaussian_mixture(N), "rbf")
        r = _blocks_run(kb, N, n, blocks, seed)
        den, _, steps = _slq_equal_time(kb.operator, r["seconds"], seed)
        a, b = _law_metrics(lam, r["res"]), _density_metrics(lam, den)
        lines.append(f"| {N:,} | {a['w1']:.3g} | {r['seconds']:.1f} | {b['w1']:.3g} | {steps} |"
                     f" {a['top10']:.3g} | {b['top10']:.3g} | {a['logdet']:+.3g} | "
                     f"{b['logdet']:+.3g} |")
    return "\n".join(lines)


def _kernel_figure(lam, runs, slq, N) -> None:
    """Truth, decompression from the smallest and largest blocks, full SLQ at the largest's time.

    Nystrom-pad is left out of the picture (three styles; its figures are in the table).
    """
    from impalpable.figures import kernel_figure, save

    est = {}
    for n in (min(runs), max(runs)):
        r = runs[n]
        d = r["res"].diagnostics
        how = (d.get("block_estimates") or [{}])[0].get("method")
        est[f"decompress ({d.get('model')}), {r['blocks']} x n = {n:,} ({how}), "
            f"{r['seconds']:.0f} s"] = r["res"]
    den = slq[max(runs)]
    est[f"SLQ on the full operator, {den.num_matvecs} products (time of n = {max(runs):,})"] = den
    fig = kernel_figure(lam, est, title=f"RBF kernel of N = {N:,} Gaussian-mixture points: "
                        "extrapolation from blocks against the truth")
    IMG.mkdir(parents=True, exist_ok=True)
    save(fig, IMG / "fd_at_scale_kernel.png")


def run(quick: bool = False, N: int | None = None,
        parts: tuple = ("kernel", "scaling", "ggn")) -> str:
    """Run the benchmark and return a Markdown section."""
    out = ["## Free decompression at scale", ""]
    if "kernel" in parts:
        N = N or (4000 if quick else 16000)
        sizes = (N // 8, N // 4) if quick else (N // 8, N // 4, N // 2)
        blocks = {N // 8: 4, N // 4: 4 if not quick else 2, N // 2: 2}
        out.append(kernel_part(N, sizes, blocks)[0])
    if "scaling" in parts:
        sizes, Ns, n = ((1000, 2000, 4000), (2000, 4000), 500) if quick else (
            (2000, 4000, 8000, 16000), (4000, 8000, 16000), 2000)
        out += ["### Cost scaling and the crossover", "",
                f"One product with the kernel operator (load {os.getloadavg()[0]:.1f}):", "",
                pass_costs(sizes), "", f"Four dense n = {n} blocks against SLQ on the full "
                "operator at the same wall time, as N grows:", "", crossover(Ns, n), ""]
    if "ggn" in parts:
        from fd_at_scale_ggn import ggn_part

        out.append(ggn_part(quick)[0])
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["truth"]:
        for n_ in map(int, args[1:]):
            lam_, s_ = kernel_truth(n_)
            print(n_, s_, lam_[-3:], flush=True)
    else:
        size = int(args[args.index("--N") + 1]) if "--N" in args else None
        part = tuple(args[args.index("--part") + 1].split(",")) if "--part" in args else (
            "kernel", "scaling", "ggn")
        text = run(quick="--quick" in args, N=size, parts=part)
        print(text)
        if "--write" in args:  # into docs/bench/freedecomp.md, between its own markers
            from fd_report import write_section

            write_section(text, "at-scale")
