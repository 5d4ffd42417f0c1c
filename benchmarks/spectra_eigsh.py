"""Benchmark: spectra.eigsh against ARPACK (scipy.sparse.linalg.eigsh) and PRIMME.

Real sparse symmetric matrices from pyamg's gallery: small ones shipped as examples
(``bar`` n=600, ``airfoil`` n=260, ``knot`` n=239) and a large one (the 7-point 3-D
Poisson matrix on a 60^3 grid, n=216,000; ``--quick``: 30^3), ``k`` = 1 and 10, ``which``
= LA and SA.  Every solver gets the same counting ``LinearOperator`` and the same
random start vector.  Tolerances mean the same thing for all three: ARPACK and
``eigsh`` stop at ``||A x - theta x|| <= tol * |theta|``; PRIMME's ``tol`` is relative
to ``||A||`` (``||r|| <= tol ||A||``), so it gets ``tol * min|lambda_wanted| / ||A||``
(exact eigenvalues known).  Errors are relative, against exact eigenvalues with
multiplicity (dense ``eigvalsh`` for the small ones, the analytic ones for Poisson):
a missed copy of a multiple eigenvalue shows as an error of the size of a gap.

Run ``python benchmarks/spectra_eigsh.py [--quick] [--write]``; ``--write`` stores the
Markdown in ``docs/bench/spectra_eigsh.md``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.sparse.linalg import LinearOperator
from scipy.sparse.linalg import eigsh as arpack_eigsh

TOL = 1e-8
MAX_MATVECS = 30_000
#: Runs per small case (best wall and best CPU time reported).
REPEATS = 5


def counting(A):
    """A symmetric scipy LinearOperator for ``A`` and a one-element product counter."""
    count = [0]

    def mv(v):
        count[0] += 1 if v.ndim == 1 else v.shape[1]
        return A @ v

    L = LinearOperator(A.shape, matvec=mv, rmatvec=mv, matmat=mv, dtype=np.float64)
    return L, count


def small_problems():
    """pyamg's real example matrices (symmetric ones) with dense reference spectra."""
    from pyamg.gallery import load_example

    out = []
    for name in ("bar", "airfoil", "knot"):
        A = load_example(name)["A"].tocsr().astype(np.float64)
        out.append((f"pyamg {name}", A, np.linalg.eigvalsh(A.toarray())))
    return out


def poisson_3d(m: int):
    """pyamg's 7-point 3-D Poisson matrix on an m^3 grid and its exact eigenvalues."""
    from pyamg.gallery import poisson

    A = poisson((m, m, m), format="csr").astype(np.float64)
    t = 2 - 2 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    lam = (t[:, None, None] + t[None, :, None] + t[None, None, :]).ravel()
    return f"pyamg poisson 3-D {m}^3", A, np.sort(lam)


def _wanted(lam, k, which):
    return np.sort(lam)[::-1][:k] if which == "LA" else np.sort(lam)[:k]


def _ours(A, k, which, v0, lam, check_copies=True):
    """spectra.eigsh on the matrix itself (its lean path for n <= 4096).

    The products are counted by the operator (``num_matvecs``; the tests check it
    against a counting wrapper, tests/spectra/test_krylov_lean.py).
    """
    from spectra import as_operator, eigsh

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        op = as_operator(A)
        res = eigsh(op, k, which=which, tol=TOL, v0=v0, max_matvecs=MAX_MATVECS,
                    check_copies=check_copies)
    assert res.num_matvecs == op.num_matvecs, (res.num_matvecs, op.num_matvecs)
    flag = "conv" if res.converged else "NOT conv"
    if any("may be missing" in str(x.message) for x in w):
        flag += ", copies warning"
    return res.eigenvalues, res.num_matvecs, flag


def _ours_nocheck(A, k, which, v0, lam):
    return _ours(A, k, which, v0, lam, check_copies=False)


def _arpack(A, k, which, v0, lam):
    L, count = counting(A)
    w = arpack_eigsh(L, k, which=which, tol=TOL, v0=v0, maxiter=MAX_MATVECS,
                     return_eigenvectors=True)[0]
    return w, count[0], "conv"


def _primme(A, k, which, v0, lam):
    import primme

    wanted = _wanted(lam, k, which)
    tol = TOL * float(np.min(np.abs(wanted))) / float(np.max(np.abs(lam)))
    L, count = counting(A)
    w = primme.eigsh(L, k, which=which, tol=tol, v0=v0[:, None], maxMatvecs=MAX_MATVECS,
                     return_eigenvectors=True)[0]
    return w, count[0], "conv"


OURS, NOCHECK = "spectra.eigsh", "spectra.eigsh (check_copies=False)"
SOLVERS = (("ARPACK", _arpack), ("PRIMME", _primme), (OURS, _ours), (NOCHECK, _ours_nocheck))


def _time(fn, repeats):
    """Best wall time and best process CPU time over ``repeats`` runs, and the output."""
    best, cpu, out = np.inf, np.inf, None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return best, cpu, out


def _case(name, A, lam, k, which, repeats, rng):
    v0 = rng.standard_normal(A.shape[0])
    ref = _wanted(lam, k, which)
    rows = {}
    for solver, fn in SOLVERS:
        try:
            t, c, (w, count, flag) = _time(lambda fn=fn: fn(A, k, which, v0, lam), repeats)
        except Exception as err:  # a solver that fails is reported, not hidden
            rows[solver] = (None, None, None, None, f"failed: {type(err).__name__}")
            continue
        w = np.sort(w)[::-1] if which == "LA" else np.sort(w)
        err = float(np.max(np.abs(w - ref) / np.abs(ref)))
        rows[solver] = (count, t, c, err, flag)
    return rows


def _table(results):
    lines = [
        "| problem | n | k | which | solver | products | wall (s) | cpu (s) | products / "
        "best other | wall / faster other | cpu / faster other | max rel. error | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, n, k, which), rows in results:
        others = [rows[s] for s in ("ARPACK", "PRIMME") if rows[s][0] is not None]
        best_p = min(r[0] for r in others) if others else np.nan
        best_t = min(r[1] for r in others) if others else np.nan
        best_c = min(r[2] for r in others) if others else np.nan
        for solver, (count, t, c, err, flag) in rows.items():
            if count is None:
                lines.append(f"| {name} | {n} | {k} | {which} | {solver} | - | - | - | - | - "
                             f"| - | - | {flag} |")
                continue
            ours = solver in (OURS, NOCHECK)
            ratio_p = f"{count / best_p:.2f}" if ours else ""
            ratio_t = f"{t / best_t:.2f}" if ours else ""
            ratio_c = f"{c / best_c:.2f}" if ours else ""
            lines.append(f"| {name} | {n} | {k} | {which} | {solver} | {count} | {t:.4f} | "
                         f"{c:.4f} | {ratio_p} | {ratio_t} | {ratio_c} | {err:.1e} | {flag} |")
    return lines


def run(quick: bool = False) -> str:
    """Run the comparison in a subprocess with single-threaded BLAS; return Markdown.

    The machine has 2 shared cores: multi-threaded OpenBLAS on an oversubscribed
    machine made small BLAS calls 20-100x slower (spin-waiting) for every solver, so
    all run with ``OPENBLAS_NUM_THREADS=1``.
    """
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    code = f"import spectra_eigsh as b; print(b._run(quick={bool(quick)}), end='')"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, text=True,
                         capture_output=True, cwd=os.path.dirname(os.path.abspath(__file__)))
    return out.stdout


def _warm_up() -> float:
    """First call of eigsh's lean path in this process (Numba's on-disk cache), seconds."""
    from pyamg.gallery import load_example

    from spectra import eigsh

    A = load_example("knot")["A"].tocsr().astype(np.float64)
    t0 = time.perf_counter()
    eigsh(A, 1, tol=TOL, rng=0)
    return time.perf_counter() - t0


def _run(quick: bool = False) -> str:
    first = _warm_up()
    rng = np.random.default_rng(0)
    load0 = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    t_start = time.perf_counter()
    results = []
    for name, A, lam in small_problems():
        for k in (1, 10):
            for which in ("LA", "SA"):
                rows = _case(name, A, lam, k, which, 1 if quick else REPEATS, rng)
                results.append(((name, A.shape[0], k, which), rows))
    name, A, lam = poisson_3d(30 if quick else 60)
    for k in (1, 10):
        for which in ("LA", "SA"):
            results.append(((name, A.shape[0], k, which), _case(name, A, lam, k, which, 1,
                                                                rng)))
    load1 = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    import importlib.metadata

    import scipy

    lines = [
        "## eigsh: thick-restart Lanczos vs ARPACK and PRIMME",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
        f"`python benchmarks/spectra_eigsh.py{' --quick' if quick else ''} --write` "
        f"(under `nice -n 10`), {platform.machine()}, {os.cpu_count()} cores shared with "
        f"other jobs: load average {' '.join(load0)} at the start, {' '.join(load1)} at "
        f"the end ({time.perf_counter() - t_start:.0f} s in all). Python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"primme {importlib.metadata.version('primme')}; single-threaded BLAS. Wall and "
        f"process CPU times are each the best of {1 if quick else REPEATS} runs for the "
        "small matrices, one run for the large one; wall times are noisy on this loaded "
        "machine (a 4 ms scheduler slice is longer than most small runs), CPU times less. "
        f"eigsh's first call in the process (loading its compiled kernels from Numba's "
        f"on-disk cache) took {first:.2f} s and is not in the table.",
        "",
        f"`tol={TOL:g}` relative (PRIMME: converted, see the module notes), same random "
        "start vector. ARPACK and PRIMME multiply through one counting `LinearOperator`; "
        "eigsh gets the sparse matrix itself (`as_operator(A)`: for n <= 4096 its steps "
        "then run in one compiled call per look) and its products are its operator's "
        "count. eigsh's products include the true residuals of the returned pairs (from "
        "its stored products, or k fresh ones when the rounding bound of the stored ones "
        "leaves the verdict open) and, in the `spectra.eigsh` row, its deflated check for "
        "missed copies of multiple eigenvalues; the `check_copies=False` row skips that "
        "check. ARPACK and PRIMME make no such check. Ratios: eigsh against the better of "
        "ARPACK and PRIMME. Flags: eigsh's `converged` and whether it warned that copies "
        "may be missing.",
        "",
        *_table(results),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = run(quick="--quick" in sys.argv)
    print(text)
    if "--write" in sys.argv:
        page = Path(__file__).resolve().parent.parent / "docs" / "bench" / "spectra_eigsh.md"
        page.write_text("# spectra.eigsh\n\n" + text)
