"""Free decompression: impalpable.freedecomp against freealg (PyPI) on the same matrices.

Three sections:

* ``textbook``: closed-form ensembles (this file);
* ``realistic``: the realistic suite of ``fd_realistic.py`` (NTK, Hessian, GGN,
  activation Gram, RBF kernel, random-feature covariance, road-graph Laplacian, spiked
  control) with the methods and metrics of ``fd_methods.py``;
* ``patches``: sparse graphs, random blocks against connected patches;
* ``at-scale``: operator blocks from kernels and model curvature (``fd_at_scale.py``,
  prints its Markdown).

Run: ``.venv/bin/python benchmarks/bench_freedecomp.py [textbook|realistic|patches]
[--quick] [--seeds K] [--ratios 8,16] [--label L]``. ``textbook`` prints its Markdown;
``realistic`` and ``patches`` save their rows to ``benchmarks/results/fd_*_L.json`` and
write their section of ``docs/bench/freedecomp.md`` (``fd_report.py``), keeping the
rest of the page. ``run(quick=False) -> str`` returns all three (``run_all.py``).

Notes
-----
* freealg 0.12.x calls ``numpy.trapz``, removed in numpy 2.4: this script sets the shim
  ``numpy.trapz = numpy.trapezoid`` before importing it.
* BLAS is limited to one thread (``OPENBLAS_NUM_THREADS=1``, set before numpy is
  imported): on a shared 2-core machine threaded OpenBLAS inside small eigensolves was
  10-100x slower from oversubscription. Timings on a shared machine are noisy.
* truth = ``eigvalsh`` of the full matrix; W1 = integral |F_est - F_true| dx. freealg's
  densities are clipped at zero and renormalised before W1 (favourable to freealg).
* Two-bulk case: population 1 and 6 interleaved along the diagonal, so the leading
  block holds exactly half of each (a random row subset would add a binomial
  composition error of ~2% in the weights, i.e. ~0.1 in W1, to every method).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fd_methods  # noqa: E402
import fd_realistic  # noqa: E402

from freedecomp import decompress, laws  # noqa: E402
from freedecomp.result import measure_from_grid  # noqa: E402
from spectra.testing import matrix_from_eigenvalues, wasserstein1  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _wishart(N, c, rng):
    m = round(N / c)
    return laws.wishart(N, m, rng) / m, m


def _two_bulk(N, c, rng):
    m = round(N / c)
    d = np.sqrt(np.where(np.arange(N) % 2 == 0, 1.0, 6.0))
    return d[:, None] * laws.wishart(N, m, rng) * d[None, :] / m, m


def _cases(quick):
    s = 4 if quick else 1
    rng = np.random.default_rng(2026)
    out = []
    A, m = _wishart(4096 // s, 0.5, rng)
    out.append(("Wishart N=4096 from n=512, c=0.5", A, 512 // s, None, None, "<= 0.0015"))
    A, m = _wishart(8192 // s, 0.5, rng)
    out.append(("Wishart N=8192 from n=512, c=0.5", A, 512 // s, None, None, "<= 0.0025"))
    A = laws.Wigner(2.0).sample_matrix(4096 // s, rng)
    out.append(("GOE N=4096 from n=512", A, 512 // s, None, None, "<= 0.0045"))
    A, m = _two_bulk(4096 // s, 0.1, rng)
    out.append(("two-bulk covariance N=4096 from n=512, c=0.1", A, 512 // s, m, None, "<= 0.03"))
    if not quick:
        law = laws.MarchenkoPastur(512 / 65536)
        B = law.sample_matrix(512, rng)
        out.append(("Wishart N=32768 from n=512 (alpha=64, truth: MP law c=0.5)", B, 512, None,
                    (32768, laws.MarchenkoPastur(0.5)), "report"))
    # outside the model families / not free compressions
    N = 4096 // s
    u = np.sort(rng.uniform(-1, 1, N))
    out.append(("uniform law N=4096 from n=512", matrix_from_eigenvalues(u, rng), 512 // s,
                None, None, "-"))
    tb = np.concatenate([rng.uniform(-2, -1, N // 2), rng.uniform(1, 2, N - N // 2)])
    out.append(("two-bump law N=4096 from n=512", matrix_from_eigenvalues(tb, rng), 512 // s,
                None, None, "-"))
    K = _digits_kernel(rng)
    if K is not None:
        out.append((f"RBF kernel, sklearn digits N={K.shape[0]} from n=200", K, 200, None, None,
                    "-"))
    return out


def _digits_kernel(rng):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    X = load_digits().data
    X = X[rng.permutation(X.shape[0])]
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    sq = np.sum(X**2, 1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0)
    K = np.exp(-D / (2 * np.median(D)))
    return 0.5 * (K + K.T)


def _ours(A, n, N, columns, repeats=3):
    """Our decompression, timed warm: best of ``repeats`` (wall and CPU seconds)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        r = decompress(A[:n, :n], N, rng=0, columns=columns)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return r, min(wall), min(cpu)


def _freealg(eigs, N, x, columns):
    import numpy

    numpy.trapz = numpy.trapezoid  # noqa: NPY201 - numpy-2.4 shim for freealg
    import freealg

    res = {}
    t = time.perf_counter()
    try:
        if columns is None:
            ff = freealg.FreeForm(eigs)
            ff.fit(method="jacobi", K=20, alpha=0.5, beta=0.5, continuation="pade")
            out = ff.decompress(N, x=x)
            rho = out[0] if isinstance(out, tuple) else out
            res["FreeForm"] = (np.asarray(rho, float), time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001 - we report freealg's crash
        res["FreeForm"] = (f"crash: {type(exc).__name__}", time.perf_counter() - t)
    t = time.perf_counter()
    try:
        af = freealg.AlgebraicForm(eigs)
        af.fit(deg_m=3, deg_z=2)
        out = af.decompress(N, x=x, kind="free" if columns is None else "deformed")
        rho = out[0] if isinstance(out, tuple) else out
        res["AlgebraicForm(3,2)"] = (np.asarray(rho, float), time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001
        res["AlgebraicForm(3,2)"] = (f"crash: {type(exc).__name__}", time.perf_counter() - t)
    return res


def _w1_grid(x, rho, truth):
    rho = np.nan_to_num(np.maximum(rho, 0.0))
    if rho.size != x.size or not np.trapezoid(rho, x) > 0:
        return float("nan")
    nodes, w = measure_from_grid(x, rho, [])
    return wasserstein1(nodes, truth, weights=w)


def _fresh_process_time(block, N, columns, repeats=3):
    """Best-of-``repeats`` time of a fresh interpreter: import + Numba cache load + one call."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "block.npy"
        np.save(path, block)
        code = (f"import time; t=time.perf_counter(); import numpy as np; from freedecomp import "
                f"decompress; B=np.load({str(path)!r}); decompress(B, {N}, rng=0, "
                f"columns={columns}); print(time.perf_counter()-t)")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[1])
        times = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 cwd=root, env=env, check=True)
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def run_textbook(quick: bool = False) -> str:
    """Run the textbook section and return its Markdown."""
    lines = ["## Free decompression (freedecomp vs freealg)", "",
             "Times: best of 3; warm = wall (CPU) seconds of one `decompress` call in this "
             "process; fresh = a new interpreter importing freedecomp, loading the Numba "
             "cache and decompressing (target < 1 s warm, < 3 s fresh). Machine load "
             f"average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.", "",
             "| case | target | ours W1 | ours model | warm s (CPU) | fresh s | "
             "raw sample W1 | freealg FreeForm W1 | freealg Algebraic(3,2) W1 | "
             "freealg time (s) | our diagnostics |", "|" + "---|" * 11]
    _ours(laws.MarchenkoPastur(0.1).sample_matrix(128, 0), 64, 256, None, 1)  # JIT warm-up
    for name, A, n, columns, lawcase, target in _cases(quick):
        if lawcase is None:
            N = A.shape[0]
            truth = np.linalg.eigvalsh(A)
        else:
            N, law = lawcase
            truth = law.to_density()
        r, t_ours, c_ours = _ours(A, n, N, columns)
        t_fresh = _fresh_process_time(A[:n, :n], N, columns)
        w_ours = wasserstein1(r.density, truth)
        eigs = np.linalg.eigvalsh(A[:n, :n])
        w_raw = wasserstein1(eigs, truth)
        fa = _freealg(eigs, N, r.x, columns)
        fw = {k: (v[0] if isinstance(v[0], str) else f"{_w1_grid(r.x, v[0], truth):.4f}")
              for k, v in fa.items()}
        ft = "/".join(f"{v[1]:.2f}" for v in fa.values())
        d = r.diagnostics
        diag = "; ".join(
            [f"decompressible={d.get('decompressible')}"]
            + ([f"free_compression={d['free_compression']}"] if "free_compression" in d else [])
            + [w[:90] for w in d.get("warnings", [])[:2]])
        lines.append(f"| {name} | {target} | {w_ours:.4f} | {d.get('model')} | "
                     f"{t_ours:.2f} ({c_ours:.2f}) | {t_fresh:.2f} | "
                     f"{w_raw:.3f} | {fw.get('FreeForm', '-')} | "
                     f"{fw.get('AlgebraicForm(3,2)', '-')} | {ft} | {diag} |")
    lines += [""]
    return "\n".join(lines)



# ======================================================================= realistic suite
def _index_sets(N: int, n: int, case: str, ratio: int, seed: int) -> list[np.ndarray]:
    """4 independent uniformly random principal index sets (the first is "the" block)."""
    key = sum(map(ord, case)) * 1009 + ratio * 101 + seed
    g = np.random.default_rng(key)
    return [np.sort(g.choice(N, size=n, replace=False)) for _ in range(4)]


#: The files whose last commit identifies the decompression code that was measured.
_DRIVER_FILES = ("freedecomp/driver.py", "freedecomp/models.py", "freedecomp/result.py",
                 "freedecomp/_homotopy.py", "freedecomp/laws", "freedecomp/candidates.py",
                 "freedecomp/evaluation.py", "freedecomp/outliers.py",
                 "freedecomp/invariants.py", "freedecomp/gram.py", "freedecomp/logmodel.py",
                 "freedecomp/checks.py", "freedecomp/blocks.py", "freedecomp/samplers.py",
                 "freedecomp/selection.py")


def _header(label: str, command: str, seeds: int) -> dict:
    import platform

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    driver = subprocess.run(["git", "log", "-1", "--format=%h", "--", *_DRIVER_FILES],
                            capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return {"label": label, "command": command, "load": load, "seeds": seeds,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit,
            "driver_commit": driver,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}",
            "rows": []}


def _block_findings(A: np.ndarray, idx: np.ndarray) -> str:
    """What ``freedecomp.checks`` says about a random block, in a few words."""
    from freedecomp.checks import sparse_block_findings

    found = sparse_block_findings(A[np.ix_(idx, idx)])
    return ", ".join(f"{f.name} {100 * f.figure:.0f}%" for f in found) or "no finding"


def _suite(cases, ratios, seeds, methods, data, limit, verbose) -> dict:
    for name in cases:
        case = fd_realistic.load_case(name)
        A, truth, N = case.matrix, case.eigenvalues, case.size
        for ratio in ratios:
            for seed in range(seeds):
                sets = _index_sets(N, N // ratio, name, ratio, seed)
                for m in methods:
                    if m == "slq" and ratio != ratios[0]:
                        out = None  # SLQ does not depend on the block size: run once per seed
                        for r in data["rows"]:
                            if (r["case"], r["seed"], r["method"]) == (name, seed, "slq"):
                                out = dict(r, ratio=ratio)
                        if out is not None:
                            data["rows"].append(out)
                            continue
                    o = fd_methods.run_method(m, A, sets, seed, graph=case.graph, limit=limit)
                    row = {"case": name, "N": N, "ratio": ratio, "seed": seed, "method": m,
                           "case_note": case.note, **fd_methods.metrics(o, truth)}
                    if m == "none" and case.graph is not None:
                        row["note"] = _block_findings(A, sets[0])
                    data["rows"].append(row)
                    if verbose:
                        print(f"{name} N/{ratio} seed {seed} {m}: w1/sd {row['w1']:.4g} "
                              f"top {row['top']:+.3g} trace {row['trace']:+.3g} "
                              f"{row['seconds']:.1f}s {row['note']}", file=sys.stderr,
                              flush=True)
    return data


def _warm_up() -> None:
    """Compile (or load) the Numba kernels before anything is timed."""
    import spectra

    _ours(laws.MarchenkoPastur(0.1).sample_matrix(128, 0), 64, 256, None, 1)
    spectra.density(laws.MarchenkoPastur(0.1).sample_matrix(128, 0), num_probes=2,
                    num_steps=20, rng=0)


def run_realistic(*, ratios=(8, 16), seeds=5, methods=fd_methods.METHODS,
                  cases=fd_realistic.CASES, label="current", limit=60.0, command=None,
                  verbose=False, reuse: str | None = None) -> dict:
    """The realistic suite: every (case, ratio, seed, method) row, saved as JSON.

    ``reuse``: a saved label whose rows of *other* methods (or other seeds and ratios)
    are kept -- e.g. freealg's and SLQ's rows, which do not depend on our driver.
    """
    _warm_up()
    cmd = command or f"python benchmarks/bench_freedecomp.py realistic --seeds {seeds}"
    data = _suite(cases, ratios, seeds, methods, _header(label, cmd, seeds), limit, verbose)
    if reuse:
        data = _merge(data, reuse)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"fd_realistic_{label.replace(' ', '_')}.json").write_text(
        __import__("json").dumps(data, indent=1))
    return data


def _merge(data: dict, label: str) -> dict:
    """``data`` plus the rows of the saved ``label`` that ``data`` does not have."""
    import json

    old = json.loads((RESULTS / f"fd_realistic_{label.replace(' ', '_')}.json").read_text())
    have = {(r["case"], r["ratio"], r["seed"], r["method"]) for r in data["rows"]}
    kept = [r for r in old["rows"] if (r["case"], r["ratio"], r["seed"], r["method"]) not in have]
    data["rows"] += kept
    data["reused"] = f"{len(kept)} rows from '{label}' ({old['date']}, load {old['load']})"
    data["seeds"] = max(data["seeds"], old["seeds"])
    return data


def run_patches(*, ratios=(8, 16), seeds=5, label="patches", command=None,
                verbose=False) -> dict:
    """Sparse graphs: a random block (as it is and decompressed) against graph patches."""
    _warm_up()
    cmd = command or f"python benchmarks/bench_freedecomp.py patches --seeds {seeds}"
    data = _suite(("road",), ratios, seeds, ("none", "nystrom", "ours", "patches", "slq"),
                  _header(label, cmd, seeds) | {"section": "patches"}, 60.0, verbose)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"fd_patches_{label.replace(' ', '_')}.json").write_text(
        __import__("json").dumps(data, indent=1))
    return data


def _alpha_block(law: str, alpha: int, n: int, rng: np.random.Generator):
    """(n x n block, exact eigenvalues or law of the alpha*n matrix) for the alpha sweep."""
    from freedecomp.samplers import haar_compress

    if law == "mp":
        # a block of the size-N Wishart matrix is a Wishart matrix of ratio c / alpha
        return laws.MarchenkoPastur(0.5 / alpha).sample_matrix(n, rng), \
            laws.MarchenkoPastur(0.5).to_density()
    N = alpha * n  # log-uniform on [1e-3, 1]: three decades, outside the model families
    truth = np.geomspace(1e-3, 1.0, N)
    # the eigenvalues of a Haar compression, not a diagonal matrix of them: principal
    # sub-blocks of a diagonal matrix are sub-samples of its diagonal, not compressions,
    # and validation on them prefers the plain block
    return haar_compress(truth, n, rng), truth


def run_alpha(*, seeds: int = 3, n: int = 256, alphas=(2, 4, 8, 16, 32, 64)) -> dict:
    """Error against alpha from n x n blocks: Marchenko-Pastur c = 1/2 (inside the model
    families) and a log-uniform law over three decades (outside), free compressions."""
    import json
    import warnings as _w

    from freedecomp import FreeDecompressionWarning
    from spectra.distances import as_measure

    _warm_up()
    data = _header("alpha", f"python benchmarks/bench_freedecomp.py alpha --seeds {seeds}",
                   seeds)
    for law in ("mp", "loguniform"):
        for alpha in alphas:
            for seed in range(seeds):
                B, truth = _alpha_block(law, alpha, n, np.random.default_rng(seed))
                x, w = as_measure(truth)
                sd = float(np.sqrt(w @ x**2 - (w @ x) ** 2))
                t = time.perf_counter()
                with _w.catch_warnings(record=True) as caught:
                    _w.simplefilter("always")
                    r = decompress(B, alpha * n, rng=seed)
                data["rows"].append({
                    "law": law, "alpha": alpha, "seed": seed,
                    "seconds": time.perf_counter() - t,
                    "w1": wasserstein1(r.density, truth) / sd,
                    "none": wasserstein1(np.linalg.eigvalsh(B) if B.ndim == 2 else B,
                                         truth) / sd,
                    "decompressible": bool(r.diagnostics.get("decompressible")),
                    "warned": any(issubclass(c.category, FreeDecompressionWarning)
                                  for c in caught)})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fd_alpha.json").write_text(json.dumps(data, indent=1))
    return data


def main(argv: list[str]) -> int:
    """Command line: see the module docstring."""
    import argparse

    from fd_report import tables, write_section

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("section", nargs="?", default="textbook",
                   choices=("textbook", "realistic", "patches", "alpha", "at-scale"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--ratios", default="8,16")
    p.add_argument("--label", default=None)
    p.add_argument("--methods", default=",".join(fd_methods.METHODS))
    p.add_argument("--cases", default=",".join(fd_realistic.CASES))
    p.add_argument("--limit", type=float, default=60.0, help="freealg time limit (s)")
    p.add_argument("--reuse", default=None,
                   help="keep the rows of this saved label that this run does not produce")
    a = p.parse_args(argv)
    if a.section == "textbook":
        print(run_textbook(quick=a.quick))
        return 0
    if a.section == "at-scale":  # operator blocks from kernels and curvature: fd_at_scale.py
        from fd_at_scale import run as run_at_scale

        print(run_at_scale(quick=a.quick))
        return 0
    if a.section == "alpha":
        from fd_report import alpha_rst, write_rst

        write_rst(alpha_rst(run_alpha(seeds=a.seeds)), "fd-alpha-table")
        return 0
    ratios = tuple(int(r) for r in a.ratios.split(","))
    command = "python benchmarks/bench_freedecomp.py " + " ".join(argv)
    if a.section == "realistic":
        data = run_realistic(ratios=ratios, seeds=a.seeds, methods=tuple(a.methods.split(",")),
                             cases=tuple(a.cases.split(",")), label=a.label or "current",
                             limit=a.limit, command=command, verbose=True, reuse=a.reuse)
    else:
        data = run_patches(ratios=ratios, seeds=a.seeds, label=a.label or "patches",
                           command=command, verbose=True)
    write_section(tables(data), data["label"])
    return 0


def run(quick: bool = False) -> str:
    """Every section (``run_all.py``): quick = one seed, blocks of N/8, no freealg."""
    from fd_report import tables

    seeds, ratios = (1, (8,)) if quick else (5, (8, 16))
    methods = ("none", "nystrom", "ours", "ours4", "slq") if quick else fd_methods.METHODS
    parts = [run_textbook(quick),
             tables(run_realistic(ratios=ratios, seeds=seeds, methods=methods, label="run_all")),
             tables(run_patches(ratios=ratios, seeds=seeds, label="run_all patches"))]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
