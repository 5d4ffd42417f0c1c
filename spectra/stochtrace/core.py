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

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla

from ..backend import absmax, coldots, dtype_name, eps, from_numpy, power_of_two, rowdots, to_numpy
from ..operators import Operator, as_operator, require_square, require_symmetric
from ..probes import PROBES, as_rng, draw
from ..results import NonFiniteError
from ..validation import check_choice, check_float, check_int, require_memory

_MIN_BUDGET = {"hutchinson": 1, "hutchpp": 3, "xtrace": 2, "xnystrace": 2, "xdiag": 2}
_BLOCK_BYTES = 256 * 2**20  # default cap on an n x block array
_HUTCH_FIRST = 10  # Hutchinson probes before the first rtol test
_START = {"hutchinson": _HUTCH_FIRST, "xtrace": 8, "xdiag": 8, "xnystrace": 16}
#: Probe used by ``probe=None``: Rademacher where the estimator is not rotation invariant
#: (Hutchinson, XDiag), uniform on the sphere for the improved projection estimators.
DEFAULT_PROBES = {"hutchinson": "rademacher", "hutchpp": "sphere", "xtrace": "sphere",
                  "xnystrace": "sphere", "xdiag": "rademacher"}
_INVARIANT = ("gaussian", "sphere")  # rotation-invariant probes: improved residual scaling
#: Estimators that see only the directions of their test vectors with rotation-invariant
#: probes (the improved residual scaling): the sphere's normalisation is left out there.
_DIRECTIONS_ONLY = ("hutchpp", "xtrace", "xnystrace")

# ---------------------------------------------------------------------------- context


class _Ctx:
    """The operator with its namespace, probe source, products and their scale.

    Products are returned by :meth:`apply` multiplied by :attr:`scale`, an exact power
    of two chosen from the first block so that the products and their squares stay far
    from overflow and underflow (1 for every operator whose products lie within
    ``1e-100 .. 1e100`` in float64, ``1e-10 .. 1e10`` in float32). The estimators work
    on ``scale * A`` and :func:`~spectra.stochtrace.estimators.trace` divides the result
    by it, which makes them scale-equivariant over the whole floating-point range.
    """

    def __init__(self, op: Operator, probe: str, rng: Any, block_size: int,
                 method: str = "") -> None:
        self.op, self.xp, self.n = op, op.xp, op.shape[0]
        self.probe, self.rng, self.block = probe, rng, block_size
        self.improved = probe in _INVARIANT
        # the improved estimators are invariant to each test vector's length, so sphere
        # probes are drawn as the Gaussian vectors they normalise (the same estimate,
        # without two passes per probe for the norm and the scaling)
        self.kind = "gaussian" if probe == "sphere" and method in _DIRECTIONS_ONLY else probe
        self.used = 0
        self.blocks = 0
        self.scale: float | None = None

    def draw(self, k: int):
        return draw(self.kind, self.n, k, like=self.op, rng=self.rng)

    def new_block(self, k: int):
        """An uninitialised ``(k, n)`` buffer in the operator's framework, dtype and device."""
        from ..probes import _empty

        return _empty(self.op.backend, k, self.n, self.op.dtype, self.op.device)

    def draw_into(self, out: Any):
        """Draw ``out.shape[0]`` probes into the ``(k, n)`` buffer ``out``; returns ``out.T``."""
        return draw(self.kind, self.n, out.shape[0], like=self.op, rng=self.rng, out=out)

    def dev(self, M: np.ndarray):
        return from_numpy(M, like=self.op)

    def apply(self, V):
        """``scale * A V`` in column blocks of at most ``block`` products.

        The operator checks each product (:meth:`~spectra.Operator.matmat`); a NaN or
        Inf is re-raised here with the block and the products of this estimate named.
        """
        k = V.shape[1]
        outs = []
        for j in range(0, k, self.block):
            b = min(self.block, k - j)
            self.blocks += 1
            try:
                out = self.op.matmat(V[:, j : j + b])
            except NonFiniteError as err:
                raise NonFiniteError(
                    f"the operator's product returned NaN or Inf in block {self.blocks} "
                    f"(products {self.used + 1} to {self.used + b} of this estimate); "
                    "check the operator"
                ) from err
            if self.scale is None:
                self.scale = self._choose_scale(out)
            if self.scale != 1.0:
                out = out * self.scale  # never in place: the operator may return its input
            self.used += b
            outs.append(out)
        return outs[0] if len(outs) == 1 else self.xp.concat(outs, axis=1)

    def _choose_scale(self, out: Any) -> float:
        top = absmax(out)
        fin = np.finfo(dtype_name(self.op.dtype))
        if top == 0.0:
            return 1.0
        if top < fin.tiny:
            warnings.warn(
                f"the operator's products are subnormal numbers (largest {top:.3g} < "
                f"{fin.tiny:.3g}, the smallest normal {dtype_name(self.op.dtype)}): they carry "
                "fewer significant bits, and the estimate may be inaccurate; scale the "
                "operator up and the result down", UserWarning, stacklevel=5)
        safe = 1e100 if fin.bits == 64 else 1e10
        if 1.0 / safe <= top <= safe:
            return 1.0
        return 1.0 / power_of_two(top)

    def unscale(self, x: Any) -> Any:
        """Undo :attr:`scale` on a result (value, standard error or samples)."""
        if self.scale in (None, 1.0) or x is None:
            return x
        return np.asarray(x, dtype=np.float64) / self.scale

    def host(self, X) -> np.ndarray:
        return to_numpy(X)


def _sketch_chunk(k: int, block: int) -> int:
    """Test vectors added per step of the XTrace / XDiag sketch (a quarter, at most a block)."""
    return max(1, min(block, -(-k // 4)))


def memory_vectors(method: str, m: int, n: int, block: int, itemsize: int = 8) -> int:
    """Peak number of ``n``-vectors (in the operator's dtype) an estimate keeps at once.

    With ``b = min(block, m)`` and, for the sketches, ``k = m // 2`` test vectors and
    chunks of ``c = max(1, min(block, ceil(k / 4)))``:

    * Hutchinson (trace): ``2b`` (a block of probes and its products); the diagonal adds
      four float64 ``n``-vectors (shift, sums, one product), ``8`` or ``16`` in float32.
    * XTrace: ``2k + 2c`` (``Omega`` and ``Q`` kept; a chunk of products or of ``AQ``
      as workspace, ``2k + c``, in the first round, which is the only one without
      ``rtol``; a chunk's products and its QR factor in later rounds). XDiag:
      ``3k + 2c`` (``AQ`` kept) plus its two float64 outputs (mean and standard error;
      the jackknife works on slices of rows).
    * XNysTrace: ``3m`` (``Omega``, ``A Omega`` and the shifted sketch factored in place).
    * Hutch++: ``max(2 r + 4 s, r + 2 min(block, m - 2 s))`` with ``s = max(1, m // 25)``
      and ``r = max(s, (m - max(2, ceil(m/3))) // 2)`` (``Q`` and ``AQ`` with sketch
      blocks, then ``Q`` with a block of residual probes and their products).

    Used to refuse impossible sizes before anything is allocated, and checked against
    the measured peak in ``tests/spectra/test_stoch_memory.py``.
    """
    k = min(m, n) // 2
    b = min(block, m)
    c = _sketch_chunk(max(k, 1), block)
    s = max(1, m // 25)
    r = max(s, (m - max(2, -(-m // 3))) // 2)
    hutchpp = max(2 * r + 4 * s, r + 2 * min(block, m - 2 * s))
    return {"hutchinson": 2 * b, "hutchpp": hutchpp, "xtrace": 2 * k + 2 * c,
            "xdiag": 3 * k + 2 * c + 2 * 8 // itemsize, "xnystrace": 3 * m}[method]


def _setup(
    op: Any, num_matvecs: Any, method: str, methods: tuple, probe: str | None, rtol: Any,
    block_size: Any, rng: Any, name: str,
) -> tuple[_Ctx, int]:
    if not isinstance(method, str) or method not in methods:
        raise ValueError(f"unknown {name} method {method!r}; allowed: {', '.join(methods)}")
    if probe is None:
        probe = DEFAULT_PROBES[method]
    check_choice(probe, "probe", PROBES)
    m = check_int(num_matvecs, f"num_matvecs of method {method!r}", low=_MIN_BUDGET[method],
                  hint=" (a budget of n or more gives the exact answer)")
    if rtol is not None:
        check_float(rtol, "rtol", low=0.0, low_open=True, hint=" (or None)")
    g = as_rng(rng)
    op = as_operator(op)
    itemsize = 4 if dtype_name(op.dtype) == "float32" else 8
    n = op.shape[0]
    cap = max(1, _BLOCK_BYTES // (n * itemsize))
    block = cap if block_size is None else check_int(block_size, "block_size", low=1,
                                                      hint=" (or None)")
    vecs = memory_vectors(method, m, n, block, itemsize) if m < n else 3 * min(block, n)
    require_memory(vecs * n * itemsize,
                   f"{name}(method={method!r}) with {m} products on n = {n} ({vecs} vectors of "
                   f"length n in {dtype_name(op.dtype)})", getattr(op, "device", "cpu"))
    if method == "hutchinson":
        require_square(op, f"{name}(method='hutchinson')")
    else:
        require_symmetric(op, f"{name}(method={method!r})")
    if method == "xnystrace" and not op.psd:
        raise ValueError(
            "xnystrace needs a positive semi-definite operator; declare it with "
            "spectra.as_operator(A, psd=True), or use method='xtrace'"
        )
    return _Ctx(op, probe, g, block, method), m


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
    A non-finite standard error (too few test vectors to estimate it) is never met.
    """
    k = kmax if rtol is None else min(k0, kmax)
    while True:
        out = round_fn(k)
        ok = bool(np.all(np.isfinite(out[1]))) and (rtol is None or _met(out[0], out[1], rtol))
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
    """Girard-Hutchinson estimate of the trace or the diagonal.

    Memory: one block of ``b`` probes (one buffer, drawn into again for every block) and
    their products (``2b`` ``n``-vectors in the operator's dtype) and, for the diagonal,
    three float64 ``n``-vector accumulators (shift, sum, sum of squares); the trace
    keeps only the ``m`` float64 samples.
    """
    xp = ctx.xp
    f64 = xp.float64
    state: dict[str, Any] = {"k": 0, "samples": [], "shift": None, "s1": None, "s2": None,
                             "buf": None}

    def add_diag(Z: Any, AZ: Any) -> None:
        for j in range(Z.shape[1]):
            p = xp.astype(Z[:, j] * AZ[:, j], f64)
            if state["shift"] is None:  # shifted sums keep the variance accurate
                state["shift"] = p
                state["s1"], state["s2"] = xp.zeros_like(p), xp.zeros_like(p)
                continue
            p -= state["shift"]
            state["s1"] += p
            p *= p
            state["s2"] += p

    def round_fn(k: int) -> tuple:
        while state["k"] < k:
            b = min(ctx.block, k - state["k"])
            if state["buf"] is None:  # one probe buffer for every block: no fresh pages
                state["buf"] = ctx.new_block(min(ctx.block, m))
            Z = ctx.draw_into(state["buf"][:b])
            AZ = ctx.apply(Z)
            state["k"] += b
            if diag:
                add_diag(Z, AZ)
            else:
                state["samples"].append(coldots(Z, AZ))
            del Z, AZ
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


def project(ctx: _Ctx, X: Any, Y: Any) -> np.ndarray:
    """``X @ Y`` for ``X`` ``(a, n)`` and ``Y`` ``(n, b)``, on the host in float64.

    The small projected matrices of the sketches (``a, b`` at most a few hundred), by
    :func:`~spectra.backend.rowdots`: partial products in the operator's dtype over
    pieces that stay in cache, added in float64 (the rounding of a piece, not of the
    whole sum); on a device one product.
    """
    return rowdots(X, Y)


def subtract_span(ctx: _Ctx, Y: Any, Q0: Any, C: np.ndarray) -> None:
    """``Y -= Q0^T C`` in place (``Q0`` rows ``(k0, n)``, ``C`` ``(k0, c)`` host float64).

    One in-place BLAS update (``beta = 1``) of ``Y`` through its transpose: no ``n x c``
    temporary (measured 2.4x faster than forming the correction and subtracting it).
    """
    Cd = ctx.dev(np.ascontiguousarray(C.T))  # (c, k0) in the operator's dtype
    if isinstance(Y, np.ndarray):
        if Y.flags.f_contiguous:
            gemm = sla.get_blas_funcs("gemm", (Y,))
            gemm(-1.0, Q0.T, Cd.T, beta=1.0, c=Y, overwrite_c=True)
        else:
            Y -= Q0.T @ Cd.T
        return
    Y.T.addmm_(Cd, Q0, alpha=-1.0)


def _qr(xp: Any, Y: Any) -> tuple[Any, Any]:
    """Reduced QR of a block we own, in its dtype.

    LAPACK ``?geqrf``/``?orgqr`` in place (``Q`` overwrites ``Y`` when it is stored
    column by column, as products are): numpy arrays, and CPU torch tensors through
    their zero-copy numpy view (measured 1.3x faster than ``torch.linalg.qr`` on an
    ``n x 5`` float32 block, ``n = 11.2`` million, without its copies); ``numpy.linalg.qr``
    would work in float64 on float32 input. ``torch.linalg.qr`` on other devices.
    """
    if isinstance(Y, np.ndarray):
        return sla.qr(Y, mode="economic", overwrite_a=True, check_finite=False)
    if Y.device.type == "cpu" and not Y.requires_grad:
        import torch

        Q, R = sla.qr(Y.numpy(), mode="economic", overwrite_a=True, check_finite=False)
        return torch.from_numpy(Q), torch.from_numpy(R)
    return xp.linalg.qr(Y)


def extend_basis(ctx: _Ctx, Q0: Any, Y: Any, fallback: Any) -> tuple[Any, Any, np.ndarray]:
    r"""Orthonormal columns ``Qe`` extending the basis ``Q0`` (rows) to span ``[Q0^T, Y]``.

    Block classical Gram-Schmidt with one reorthogonalisation against ``Q0`` (in-place
    BLAS updates, :func:`subtract_span`), then a Householder QR of the residual:
    :math:`Y = Q_0^TR_{top} + Q_eR_b`. When ``R_b`` is ill-conditioned (the chunk lies
    nearly inside the basis, so the orthogonality loss
    :math:`\sim\epsilon\|Y\|/\sigma_{min}(R_b)` may be large) ``Qe`` is checked and
    repaired (re-orthogonalised, or rebuilt from ``fallback``, e.g. the chunk's test
    vectors, when it lies inside too); the columns' norms :math:`\|y_j\|` come from
    the factors (:math:`\|y_j\|^2 = \|R_{top}e_j\|^2 + \|R_be_j\|^2`), not from
    another pass. ``Y`` is overwritten (``Qe`` may be stored in it). Returns
    ``(Qe, R_top, R_b)``, the factors on the host in float64 (``R_top`` is ``None`` for
    an empty basis).
    """
    xp, host = ctx.xp, ctx.host
    k0 = Q0.shape[0]
    rtop = None
    if k0:
        C = project(ctx, Q0, Y)
        subtract_span(ctx, Y, Q0, C)
        C2 = project(ctx, Q0, Y)
        subtract_span(ctx, Y, Q0, C2)
        rtop = C + C2
    Qe, Rb = _qr(xp, Y)
    Rb = host(Rb)
    if k0:
        ynorm = float(np.sqrt(np.max(np.sum(rtop * rtop, axis=0) + np.sum(Rb * Rb, axis=0))))
        if float(np.linalg.svd(Rb, compute_uv=False)[-1]) <= 1e-3 * ynorm:
            Qe = _repair(ctx, Q0, Qe, fallback)
    return Qe, rtop, Rb


def _repair(ctx: _Ctx, Q0: Any, Qe: Any, fallback: Any):
    """``Qe`` made orthogonal to the rows of ``Q0`` (to ``1e3 eps``), else ``fallback``'s."""
    xp, host = ctx.xp, ctx.host
    tol = 1e3 * eps(ctx.op.dtype)
    X = Qe
    for X0 in (Qe, fallback):
        X = X0
        for _ in range(2):
            E = Q0 @ X
            if float(np.max(np.abs(host(E)))) <= tol:
                return X
            X = _qr(xp, X - (E.T @ Q0).T)[0]
        if float(np.max(np.abs(host(Q0 @ X)))) <= tol:
            return X
    return X
