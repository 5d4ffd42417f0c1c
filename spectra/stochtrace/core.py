"""Shared core of the trace and diagonal estimators of :mod:`spectra.stochtrace`.

Holds the estimation context :class:`_Ctx` (operator, probe source, blocked and checked
products, product counter), argument checking (:func:`_setup`), the adaptive driver
:func:`_drive` that grows the number of test vectors until ``rtol`` is met, the exact
diagonal from unit vectors, the Girard-Hutchinson estimator of trace and diagonal, and
the basis helpers shared by the sketching methods (:mod:`spectra.stochtrace.hutchpp`,
:mod:`spectra.stochtrace.exchangeable`).

References
----------
.. [1] D. Girard, "A fast 'Monte-Carlo cross-validation' procedure for large least
   squares problems with noisy data", Numer. Math. 56 (1989).
.. [2] M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix
   for Laplacian smoothing splines", Commun. Stat. Simul. Comput. 19 (1990).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import dtype_name, from_numpy, to_numpy
from ..operators import Operator, as_operator, require_square, require_symmetric
from ..probes import PROBES, as_rng, draw
from ..results import NonFiniteError
from ..validation import check_float, check_int

_MIN_BUDGET = {"hutchinson": 1, "hutchpp": 3, "xtrace": 2, "xnystrace": 2, "xdiag": 2}
_BLOCK_BYTES = 256 * 2**20  # default cap on an n x block array
_HUTCH_FIRST = 10  # Hutchinson probes before the first rtol test
_START = {"hutchinson": _HUTCH_FIRST, "xtrace": 8, "xdiag": 8, "xnystrace": 16}
#: Probe used by ``probe=None``: Rademacher where the estimator is not rotation invariant
#: (Hutchinson, XDiag), uniform on the sphere for the improved projection estimators.
DEFAULT_PROBES = {"hutchinson": "rademacher", "hutchpp": "sphere", "xtrace": "sphere",
                  "xnystrace": "sphere", "xdiag": "rademacher"}
_INVARIANT = ("gaussian", "sphere")  # rotation-invariant probes: improved residual scaling

# ---------------------------------------------------------------------------- context


class _Ctx:
    """The operator with its namespace, probe source and a product counter."""

    def __init__(self, op: Operator, probe: str, rng: Any, block_size: int) -> None:
        self.op, self.xp, self.n = op, op.xp, op.shape[0]
        self.probe, self.rng, self.block = probe, rng, block_size
        self.improved = probe in _INVARIANT
        self.used = 0
        self.blocks = 0

    def draw(self, k: int):
        return draw(self.probe, self.n, k, like=self.op, rng=self.rng)

    def dev(self, M: np.ndarray):
        return from_numpy(M, like=self.op)

    def apply(self, V):
        """``A V`` in column blocks of at most ``block`` products, checked for NaN/Inf."""
        k = V.shape[1]
        outs = []
        for j in range(0, k, self.block):
            out = self.op.matmat(V[:, j : j + self.block])
            b = out.shape[1]
            self.blocks += 1
            if not bool(self.xp.all(self.xp.isfinite(out))):
                raise NonFiniteError(
                    f"the operator's product returned NaN or Inf in block {self.blocks} "
                    f"(products {self.used + 1} to {self.used + b} of this estimate); "
                    "check the operator"
                )
            self.used += b
            outs.append(out)
        return outs[0] if len(outs) == 1 else self.xp.concat(outs, axis=1)

    def host(self, X) -> np.ndarray:
        return to_numpy(X)


def _setup(
    op: Any, num_matvecs: Any, method: str, methods: tuple, probe: str | None, rtol: Any,
    block_size: Any, rng: Any, name: str,
) -> tuple[_Ctx, int]:
    if method not in methods:
        raise ValueError(f"unknown {name} method {method!r}; allowed: {', '.join(methods)}")
    if probe is None:
        probe = DEFAULT_PROBES[method]
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; allowed: {', '.join(PROBES)}")
    m = check_int(num_matvecs, f"num_matvecs of method {method!r}", low=_MIN_BUDGET[method],
                  hint=" (a budget of n or more gives the exact answer)")
    if rtol is not None:
        check_float(rtol, "rtol", low=0.0, low_open=True, hint=" (or None)")
    op = as_operator(op)
    if method == "hutchinson":
        require_square(op, f"{name}(method='hutchinson')")
    else:
        require_symmetric(op, f"{name}(method={method!r})")
    if method == "xnystrace" and not op.psd:
        raise ValueError(
            "xnystrace needs a positive semi-definite operator; declare it with "
            "spectra.as_operator(A, psd=True), or use method='xtrace'"
        )
    itemsize = 4 if dtype_name(op.dtype) == "float32" else 8
    cap = max(1, _BLOCK_BYTES // (op.shape[0] * itemsize))
    block = cap if block_size is None else check_int(block_size, "block_size", low=1,
                                                      hint=" (or None)")
    return _Ctx(op, probe, as_rng(rng), block), m


def _met(value: Any, stderr: Any, rtol: float) -> bool:
    if np.ndim(value) == 0:
        return bool(stderr <= rtol * abs(value))
    return bool(np.linalg.norm(stderr) <= rtol * np.linalg.norm(value))


def _sem(samples: np.ndarray) -> float:
    """Standard error of the mean of exchangeable samples (``inf`` for fewer than two)."""
    if samples.size < 2:
        return float("inf")
    return float(np.std(samples, ddof=1) / np.sqrt(samples.size))


def _drive(
    round_fn: Callable[[int], tuple], k0: int, kmax: int, rtol: float | None,
    grow: Callable[[int, tuple], int] | None = None,
) -> tuple[tuple, int, bool]:
    """Run rounds of ``round_fn(k)`` (``k`` test vectors in all) until ``rtol`` is met.

    Without ``rtol`` one round uses the whole budget. With it, ``k`` doubles (or follows
    ``grow``) from ``k0`` until the standard error is small enough or ``k == kmax``.
    """
    k = kmax if rtol is None else min(k0, kmax)
    while True:
        out = round_fn(k)
        ok = rtol is None or _met(out[0], out[1], rtol)
        if ok or k >= kmax:
            return out, k, ok
        k = min(kmax, grow(k, out) if grow is not None else 2 * k)


# ---------------------------------------------------------------------------- exact


def _exact_diagonal(ctx: _Ctx) -> np.ndarray:
    """The diagonal from the ``n`` unit vectors, in blocks."""
    n, d = ctx.n, np.empty(ctx.n)
    for j0 in range(0, n, ctx.block):
        j1 = min(n, j0 + ctx.block)
        E = np.zeros((n, j1 - j0))
        E[np.arange(j0, j1), np.arange(j1 - j0)] = 1.0
        d[j0:j1] = np.diag(ctx.host(ctx.apply(ctx.dev(E))[j0:j1, :]))
    return d


# ---------------------------------------------------------------------------- Hutchinson


def _hutchinson(ctx: _Ctx, m: int, rtol: float | None, diag: bool) -> tuple[tuple, int, bool]:
    xp = ctx.xp
    state: dict[str, Any] = {"k": 0, "samples": [], "shift": None, "s1": 0.0, "s2": 0.0}

    def round_fn(k: int) -> tuple:
        while state["k"] < k:
            b = min(ctx.block, k - state["k"])
            Z = ctx.draw(b)
            P = xp.astype(Z * ctx.apply(Z), xp.float64)
            state["k"] += b
            if not diag:
                state["samples"].append(ctx.host(xp.sum(P, axis=0)))
                continue
            if state["shift"] is None:  # shifted sums keep the variance accurate
                state["shift"] = xp.mean(P, axis=1)
            P = P - state["shift"][:, None]
            state["s1"] = state["s1"] + xp.sum(P, axis=1)
            state["s2"] = state["s2"] + xp.sum(P * P, axis=1)
        if not diag:
            s = np.concatenate(state["samples"])
            return float(np.mean(s)), _sem(s), s
        kk = state["k"]
        s1, s2 = ctx.host(state["s1"]), ctx.host(state["s2"])
        value = ctx.host(state["shift"]) + s1 / kk
        if kk < 2:
            return value, np.full(ctx.n, np.inf), None
        var = np.maximum(s2 - s1**2 / kk, 0.0) / (kk - 1)
        return value, np.sqrt(var / kk), None

    def grow(k: int, out: tuple) -> int:
        # probes needed for the target if the variance estimate is right, at most doubling
        value, stderr = out[0], out[1]
        scale = np.linalg.norm(value) if diag else abs(value)
        err = np.linalg.norm(stderr) if diag else stderr
        need = k * (err / max(rtol * scale, 1e-300)) ** 2 if np.isfinite(err) else 2 * k
        return int(max(k + max(1, k // 4), min(2 * k, np.ceil(1.2 * need))))

    return _drive(round_fn, _START["hutchinson"], m, rtol, grow)


# ---------------------------------------------------------------------------- sketches


def _cat(xp: Any, a: Any, b: Any):
    """Columns of ``a`` then ``b`` (``a`` may be ``None``)."""
    return b if a is None else xp.concat([a, b], axis=1)


def _extend_basis(xp: Any, Q: Any, Ynew: Any):
    """Orthonormal columns extending ``Q`` so that the result spans ``[Q, Ynew]``.

    Householder QR of ``[Q, Ynew]`` keeps the whole basis orthonormal even when
    ``Ynew`` is (numerically) inside ``range(Q)``.
    """
    if Q is None:
        return xp.linalg.qr(Ynew)[0]
    k = Q.shape[1]
    Qf = xp.linalg.qr(xp.concat([Q, Ynew], axis=1))[0]
    return Qf[:, k:]
