"""Methods and metrics of the realistic free-decompression benchmark.

Every method maps (matrix, index sets of random principal blocks, N, seed) to an
estimated spectral measure ``(nodes, weights)`` of the N x N matrix, and every metric
is computed from that measure against the exact eigenvalues, the same way for all:

* ``none``: the first block's eigenvalues as they are;
* ``nystrom``: Nystrom-pad, the block's eigenvalues times N/n, padded with N - n zeros;
* ``ours``: ``freedecomp.decompress(block, N)`` with defaults;
* ``ours4``: ``decompress`` on a stack of 4 independent blocks;
* ``freeform`` / ``algebraic``: freealg's ``FreeForm`` (Jacobi basis, K = 20,
  alpha = beta = 0.5, Pade continuation) and ``AlgebraicForm`` (deg_m = 3, deg_z = 2),
  the configurations of the textbook section of ``bench_freedecomp.py``, each in a
  child process killed after ``limit`` seconds; their densities on a grid spanning the
  sample's range and its Nystrom scaling are clipped at zero and renormalised
  (favourable to them);
* ``patches``: for sparse graphs only, the pooled eigenvalues of 4 connected
  breadth-first patches (``freedecomp.samplers.graph_patches``), not decompressed;
* ``slq``: stochastic Lanczos quadrature on the full matrix with 600 products
  (``spectra.density``, 6 probes x 100 steps): the matvec ceiling, not a competitor.

Metrics: ``w1`` = W1 / sd(truth) (``spectra.distances.wasserstein1``); ``top`` =
relative error of the estimated top eigenvalue, the measure's quantile at
1 - 1/(2N) (where the largest of N eigenvalues sits); ``trace`` = (N E[x] - tr A) /
sum|lambda| (the relative trace error for PSD matrices); ``logdet`` = |E log(|x| + d)
- mean log(|lambda| + d)| in nats per eigenvalue, ridge d = 1e-3 max|lambda|;
``warned`` = a ``FreeDecompressionWarning`` was emitted; ``seconds`` = wall time.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from freedecomp import FreeDecompressionWarning, decompress
from freedecomp.result import measure_from_grid
from freedecomp.samplers import graph_patches
from spectra.distances import as_measure, wasserstein1

METHODS = ("none", "nystrom", "ours", "ours4", "freeform", "algebraic", "slq")
LABELS = {"none": "none", "nystrom": "Nystrom-pad", "ours": "ours", "ours4": "ours, 4 blocks",
          "freeform": "freealg FreeForm", "algebraic": "freealg Algebraic(3,2)",
          "patches": "graph patches (4)", "slq": "SLQ 600 matvecs"}
RIDGE = 1e-3


@dataclass
class Outcome:
    """An estimate (or why there is none) and how it was obtained."""

    nodes: np.ndarray | None
    weights: np.ndarray | None
    seconds: float
    warned: bool | None = None
    note: str = ""


# ------------------------------------------------------------------------------ metrics
def _quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    c = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(c, q * c[-1]), x.size - 1)])


def metrics(out: Outcome, truth: np.ndarray) -> dict:
    """The benchmark's figures of one estimate against the exact eigenvalues."""
    row = {"seconds": out.seconds, "warned": out.warned, "note": out.note}
    if out.nodes is None:
        return row | {"w1": math.nan, "top": math.nan, "trace": math.nan, "logdet": math.nan}
    x, w = as_measure(out.nodes, out.weights)
    N = truth.size
    d = RIDGE * float(np.abs(truth).max())
    row["w1"] = wasserstein1(x, truth, weights=w) / float(truth.std())
    row["top"] = (_quantile(x, w, 1 - 0.5 / N) - truth[-1]) / abs(truth[-1])
    row["trace"] = (N * float(w @ x) - truth.sum()) / float(np.abs(truth).sum())
    row["logdet"] = abs(float(w @ np.log(np.abs(x) + d)) - float(np.mean(np.log(np.abs(truth)
                                                                                 + d))))
    return row


# ------------------------------------------------------------------------------ methods
def _timed(fn: Callable[[], tuple[np.ndarray, np.ndarray, bool | None]]) -> Outcome:
    t = time.perf_counter()
    try:
        nodes, weights, warned = fn()
    except _Timeout:
        return Outcome(None, None, time.perf_counter() - t, None, "timeout")
    except RuntimeError as exc:  # a crash in the child process: its exception's name
        return Outcome(None, None, time.perf_counter() - t, None, f"crash: {exc}")
    except Exception as exc:  # noqa: BLE001 - a crash is a result
        return Outcome(None, None, time.perf_counter() - t, None,
                       f"crash: {type(exc).__name__}")
    return Outcome(nodes, weights, time.perf_counter() - t, warned)


def _eigs(A: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(A[np.ix_(idx, idx)])


def _ours(blocks: np.ndarray, N: int, seed: int):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = decompress(blocks if blocks.shape[0] > 1 else blocks[0], N, rng=seed)
    d = r.density
    warned = any(issubclass(c.category, FreeDecompressionWarning) for c in caught)
    return d.nodes, d.weights, warned


class _Timeout(Exception):
    pass


def _child(queue, fn, args):
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("crash", type(exc).__name__))


def _with_limit(fn: Callable, args: tuple, seconds: float):
    """``fn(*args)`` in a forked child process, killed after ``seconds``.

    freealg's fits run long stretches in compiled code and catch exceptions broadly,
    so an alarm in this process does not stop them; a child process can be.
    """
    import multiprocessing as mp
    import queue as _queue

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    # not a daemon: freealg starts worker processes of its own (a daemonic process may
    # not, and AlgebraicForm then fails with an AssertionError)
    proc = ctx.Process(target=_child, args=(q, fn, args), daemon=False)
    proc.start()
    try:
        status, value = q.get(timeout=seconds)
    except _queue.Empty:
        proc.kill()
        proc.join()
        raise _Timeout from None
    proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return value


def _freealg():
    import numpy

    numpy.trapz = numpy.trapezoid  # noqa: NPY201 - numpy >= 2.4 shim for freealg 0.12
    import freealg

    return freealg


def freealg_available() -> bool:
    """Whether freealg imports (with the numpy shim)."""
    try:
        _freealg()
    except ImportError:
        return False
    return True


def _grid_measure(fa_obj, N: int, eigs: np.ndarray, alpha: float, **kw):
    """freealg's decompressed density on a grid over the Nystrom-scaled sample range."""
    lo, hi = float(eigs.min()), float(eigs.max())
    span = hi - lo
    x = np.linspace(min(lo, alpha * lo) - 0.1 * span, max(hi, alpha * hi) + 0.1 * span, 4001)
    out = fa_obj.decompress(N, x=x, **kw)
    rho = np.nan_to_num(np.maximum(np.asarray(out[0] if isinstance(out, tuple) else out,
                                              float), 0.0))
    if not np.trapezoid(rho, x) > 0:
        raise ValueError("no mass on the grid")
    return measure_from_grid(x, rho, [])


def _freeform_fit(eigs: np.ndarray, N: int):
    ff = _freealg().FreeForm(eigs)
    ff.fit(method="jacobi", K=20, alpha=0.5, beta=0.5, continuation="pade")
    return _grid_measure(ff, N, eigs, N / eigs.size)


def _algebraic_fit(eigs: np.ndarray, N: int):
    af = _freealg().AlgebraicForm(eigs)
    af.fit(deg_m=3, deg_z=2)
    return _grid_measure(af, N, eigs, N / eigs.size, kind="free")


def _freeform(eigs: np.ndarray, N: int, limit: float):
    nodes, weights = _with_limit(_freeform_fit, (eigs, N), limit)
    return nodes, weights, None


def _algebraic(eigs: np.ndarray, N: int, limit: float):
    nodes, weights = _with_limit(_algebraic_fit, (eigs, N), limit)
    return nodes, weights, None


def _slq(A: np.ndarray, seed: int):
    import spectra

    d = spectra.density(A, num_probes=6, num_steps=100, rng=seed)
    return d.nodes, d.weights, None


def run_method(method: str, A: np.ndarray, index_sets: list[np.ndarray], seed: int, *,
               graph=None, limit: float = 60.0) -> Outcome:
    """One method on one case and seed. ``index_sets``: 4 random principal index sets."""
    N, n = A.shape[0], index_sets[0].size
    if method in ("freeform", "algebraic") and not freealg_available():
        return Outcome(None, None, 0.0, None, "not installed")
    if method == "none":
        return _timed(lambda: (_eigs(A, index_sets[0]), None, None))
    if method == "nystrom":
        return _timed(lambda: (np.concatenate([_eigs(A, index_sets[0]) * (N / n),
                                               np.zeros(N - n)]), None, None))
    if method == "ours":
        return _timed(lambda: _ours(A[np.ix_(index_sets[0], index_sets[0])][None], N, seed))
    if method == "ours4":
        return _timed(lambda: _ours(np.stack([A[np.ix_(i, i)] for i in index_sets]), N, seed))
    if method == "freeform":
        return _timed(lambda: _freeform(_eigs(A, index_sets[0]), N, limit))
    if method == "algebraic":
        return _timed(lambda: _algebraic(_eigs(A, index_sets[0]), N, limit))
    if method == "patches":
        if graph is None:
            return Outcome(None, None, 0.0, None, "not a graph")
        return _timed(lambda: (np.concatenate([np.linalg.eigvalsh(B) for B in
                                               graph_patches(graph, n, 4, rng=seed)]),
                               None, None))
    if method == "slq":
        return _timed(lambda: _slq(A, seed))
    raise ValueError(f"unknown method {method!r}")
