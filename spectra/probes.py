"""Random probe vectors, born in the operator's framework, dtype and device.

Randomness is always an argument: ``rng`` may be ``None`` (fresh OS entropy), a
non-negative integer seed, a :class:`numpy.random.Generator`, or a ``torch.Generator``
(on any device, for numpy and torch operators alike).

How probes are drawn (:func:`draw`):

* **One probe at a time, in order.** Probe ``j`` is the ``j``-th draw of length ``n``
  from the generator, so the probes of a seed do not depend on how they are batched:
  one block of ``k`` probes equals ``k`` blocks of one. The ``(n, k)`` block is stored
  probe by probe (column-major, a transposed ``(k, n)`` buffer).
* **numpy operator, numpy generator**: Rademacher entries from the raw bits of the bit
  generator (one bit per entry); Gaussian entries from the float64 normal stream in
  chunks of :data:`CHUNK`, written into the operator's dtype (float32 and float64
  operators see the same probes, and no ``n``-vector is ever formed in float64).
* **torch operator, numpy generator** (an integer seed or ``None`` included; CPU and
  CUDA alike): probe ``j`` is drawn by torch in the operator's dtype and on its device,
  by a ``torch.Generator`` seeded with the ``j``-th 63-bit integer of the numpy stream
  (``rng.integers(0, 2**63)``, one per probe, :func:`torch_seed`). This is the one
  derivation of torch probes from a numpy seed; the :mod:`hessian` helpers pass their
  ``rng`` through to it. Measured at ``n = 11.2`` million in float32, one thread:
  Gaussian 33 ms per probe against 105 ms for numpy's float64 stream and a copy (CPU
  probes are drawn in cache-sized pieces with the numbers of one call, :func:`_randn`);
  Rademacher 8 ms through a sign table of random bytes.
* **torch generator**: used as it is, drawn by torch on the generator's device in the
  operator's dtype, then moved to the operator (``.numpy()`` without a copy for a numpy
  operator and a CPU generator). A numpy and a torch operator given equal
  ``torch.Generator`` s therefore see the same probes: this is how to compare the two
  frameworks on one problem.

A numpy and a torch operator given the same integer seed thus see *different* probes
(each bit-reproducible for its seed, each unbiased); their estimates agree within
their standard errors, not bitwise.

The sphere probe's norm is accumulated in float64.
"""

from __future__ import annotations

import math
import sys
from numbers import Integral
from typing import Any

import numpy as np

from .backend import dtype_name
from .validation import check_choice, require_memory

__all__ = ["CHUNK", "PROBES", "as_rng", "draw", "torch_seed"]

PROBES = ("rademacher", "gaussian", "sphere")
#: Entries per float64 chunk of the Gaussian host stream (512 KiB of workspace).
CHUNK = 1 << 16

_ALLOWED = ("None, a non-negative int seed, a numpy.random.Generator or a torch.Generator")


def _is_torch_generator(rng: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(rng, torch.Generator)


def as_rng(rng: Any) -> Any:
    """Normalise ``rng`` to a numpy ``Generator`` (or pass a ``torch.Generator`` through).

    Parameters
    ----------
    rng : None, int, numpy.random.Generator or torch.Generator
        ``None`` draws fresh entropy from the OS; an integer must be ``>= 0``.

    Returns
    -------
    numpy.random.Generator or torch.Generator

    Raises
    ------
    TypeError
        For any other type, including ``bool`` (``rng=True`` is not a seed) and the
        legacy ``numpy.random.RandomState``.
    ValueError
        For a negative seed.
    """
    if isinstance(rng, np.random.Generator) or _is_torch_generator(rng):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (Integral, np.integer)):
        hint = (" (use numpy.random.default_rng(seed) instead of RandomState)"
                if isinstance(rng, np.random.RandomState) else "")
        raise TypeError(f"rng must be {_ALLOWED}, got {rng!r}{hint}")
    if int(rng) < 0:
        raise ValueError(f"rng must be {_ALLOWED}; a seed must be >= 0, got {int(rng)}")
    return np.random.default_rng(int(rng))


def _target(like: Any) -> tuple[str, Any, Any]:
    """``(backend, dtype, device)`` of an operator or array."""
    from .backend import is_torch

    backend = "torch" if (is_torch(like) or getattr(like, "backend", None) == "torch") \
        else "numpy"
    return backend, like.dtype, getattr(like, "device", "cpu")


def _host_probe(kind: str, g: np.random.Generator, out: np.ndarray) -> float:
    """Fill the 1-d host array ``out`` with one probe; return its squared norm (float64)."""
    n = out.shape[0]
    if kind == "rademacher":
        raw = g.bit_generator.random_raw(-(-n // 64))
        bits = np.unpackbits(raw.view(np.uint8), count=n)
        np.subtract(bits, 0.5, out=out, casting="unsafe")
        out *= 2
        return float(n)
    buf = np.empty(min(n, CHUNK))
    sq = 0.0
    for s in range(0, n, CHUNK):
        b = buf[: min(CHUNK, n - s)]
        g.standard_normal(out=b)
        sq += float(np.dot(b, b))
        out[s : s + b.shape[0]] = b
    return sq


_SIGNS: dict = {}  # (device, dtype) -> (256, 8) table of the +-1 signs of a byte's bits


def _signs(like: Any) -> Any:
    """The ``(256, 8)`` table whose row ``b`` holds ``2 bit - 1`` for the bits of ``b``."""
    key = (str(like.device), like.dtype)
    if key not in _SIGNS:
        import torch

        bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)
        _SIGNS[key] = torch.from_numpy(bits * 2.0 - 1.0).to(like.device, like.dtype)
    return _SIGNS[key]


def _torch_probe(kind: str, gen: Any, out: Any) -> None:
    """Fill the 1-d tensor ``out`` with one probe drawn by ``gen`` (on ``out``'s device).

    Rademacher entries come from random bytes, eight entries per byte through a sign
    table (one pass over ``out``; ``bernoulli_`` was measured 20x slower on a CPU); the
    sphere's norm is accumulated in float64.
    """
    import torch

    n = out.shape[0]
    if kind == "rademacher":
        m = -(-n // 8)
        idx = torch.randint(0, 256, (m,), generator=gen, dtype=torch.uint8,
                            device=out.device).long()
        tab, full = _signs(out), n // 8
        torch.index_select(tab, 0, idx[:full], out=out[: 8 * full].view(full, 8))
        if n > 8 * full:
            out[8 * full:] = tab[idx[full]][: n - 8 * full]
        return
    _randn(gen, out)
    if kind == "sphere":
        from .backend import coldots

        out.mul_(math.sqrt(n / float(coldots(out, out))))


#: Entries per ``torch.randn`` call on a CPU (a multiple of 16; see :func:`_randn`).
RANDN_PIECE = 1 << 15


def _randn(gen: Any, out: Any) -> None:
    """``torch.randn(n, generator=gen, out=out)`` for the 1-d tensor ``out``, bitwise.

    On a CPU torch fills a contiguous tensor of 16 or more entries with one uniform
    deviate per entry, in order, then transforms blocks of 16 (the last 16 redrawn when
    ``n`` is not a multiple of 16). Calls on consecutive pieces whose lengths are
    multiples of 16, the last one at least 16 long, therefore draw the same numbers
    (tests/spectra/test_stoch_probes.py) while the piece stays in cache: measured
    29 against 45 CPU ms per 11.2 M-entry float32 probe (medians of six, one thread).
    """
    import torch

    n = out.shape[0]
    if out.device.type != "cpu" or n < 2 * RANDN_PIECE:
        torch.randn(n, generator=gen, dtype=out.dtype, device=out.device, out=out)
        return
    full = (n // RANDN_PIECE) * RANDN_PIECE
    if n - full < 16:  # keep the last call at 16 entries or more
        full -= RANDN_PIECE
    for lo in range(0, full, RANDN_PIECE):
        torch.randn(RANDN_PIECE, generator=gen, dtype=out.dtype, out=out[lo:lo + RANDN_PIECE])
    torch.randn(n - full, generator=gen, dtype=out.dtype, out=out[full:])


def draw(kind: str, n: int, k: int, *, like: Any, rng: Any, out: Any = None) -> Any:
    """Draw an ``(n, k)`` block of isotropic probes (``E[z z^T] = I``), one probe at a time.

    Parameters
    ----------
    kind : {"rademacher", "gaussian", "sphere"}
        Entries ``+-1``; standard normal; uniform on the sphere of radius ``sqrt(n)``.
    n, k : int
        Block shape.
    like : Operator or array
        Gives namespace, dtype and device.
    rng : numpy or torch generator (see :func:`as_rng`)
        Consumed probe by probe: the probes of a generator do not depend on ``k``.
    out : array of shape ``(k, n)``, optional
        A C-contiguous buffer in ``like``'s framework, dtype and device to draw into
        (estimators that keep their probes preallocate it); ``out.T`` is returned.

    Returns
    -------
    array of shape ``(n, k)``
        In ``like``'s namespace, dtype and device; each probe (column) contiguous.
    """
    check_choice(kind, "probe", PROBES)
    g = as_rng(rng)
    backend, dtype, device = _target(like)
    if out is None:
        itemsize = 4 if dtype_name(dtype) == "float32" else 8
        require_memory(k * n * itemsize, f"{k} probe vectors of length n = {n}", device)
        out = _empty(backend, k, n, dtype, device)
    if isinstance(g, np.random.Generator):
        if backend == "numpy":
            return _draw_host(kind, g, out)
        return _draw_seeded(kind, g, out)
    return _draw_torch(kind, g, out, backend)


def _empty(backend: str, k: int, n: int, dtype: Any, device: Any):
    if backend == "numpy":
        return np.empty((k, n), dtype=dtype_name(dtype))
    import torch

    return torch.empty((k, n), dtype=dtype, device=device)


def torch_seed(g: np.random.Generator) -> int:
    """The seed of the ``torch.Generator`` that draws the next torch probe from ``g``.

    One 63-bit integer, ``g.integers(0, 2**63)``: every torch probe drawn from a numpy
    generator consumes exactly one, so the probes do not depend on the batching.
    """
    return int(g.integers(0, 2**63))


def _draw_host(kind: str, g: np.random.Generator, out: np.ndarray):
    n = out.shape[1]
    for j in range(out.shape[0]):
        sq = _host_probe(kind, g, out[j])
        if kind == "sphere":
            out[j] *= out.dtype.type(math.sqrt(n / sq))
    return out.T


def _draw_seeded(kind: str, g: np.random.Generator, out: Any):
    """Probe ``j`` by a ``torch.Generator`` on ``out``'s device seeded by :func:`torch_seed`."""
    import torch

    gen = torch.Generator(device=out.device)
    for j in range(out.shape[0]):
        gen.manual_seed(torch_seed(g))
        _torch_probe(kind, gen, out[j])
    return out.T


def _draw_torch(kind: str, gen: Any, out: Any, backend: str):
    import torch

    if backend == "torch" and out.device == gen.device:
        for j in range(out.shape[0]):
            _torch_probe(kind, gen, out[j])
        return out.T
    dtype = out.dtype if isinstance(out.dtype, torch.dtype) else getattr(torch, dtype_name(
        out.dtype))
    row = torch.empty(out.shape[1], dtype=dtype, device=gen.device)
    for j in range(out.shape[0]):
        _torch_probe(kind, gen, row)
        if backend == "numpy":
            out[j] = row.cpu().numpy()
        else:
            out[j] = row.to(out.device)
    return out.T
