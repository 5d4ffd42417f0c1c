"""Measurement helpers shared by the curvature benchmarks (``bench_hessian`` and parts).

The device all parts run on (:func:`set_device`), peak memory, interleaved timing,
product counters, and the anchors' import and global-RNG accommodations.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import torch
from torch import nn

CE = nn.CrossEntropyLoss()
DEVICE = torch.device("cpu")


def set_device(device: str) -> torch.device:
    global DEVICE
    DEVICE = torch.device(device)
    return DEVICE


def nparams(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _status(field: str) -> int | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def trim() -> None:
    """Hand freed heap memory back to the system (glibc), so RSS peaks measure growth."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_bytes(fn) -> tuple[Any, float | None]:
    """``(fn(), peak memory growth during the call in bytes)``; ``None`` when unknown.

    On CUDA: the peak allocated above what was allocated before. On the CPU: the growth
    of the resident set (Linux ``VmHWM`` after resetting it through
    ``/proc/self/clear_refs``, freed heap trimmed first), so it includes allocator
    caching.
    """
    if DEVICE.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        sync()
        return out, float(torch.cuda.max_memory_allocated() - base)
    trim()
    base = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        base = None
    out = fn()
    hwm = _status("VmHWM")
    if base is None or hwm is None:
        return out, None
    return out, max(hwm - base, 0) * 1024.0


def peak_mb(fn) -> str:
    """Peak memory growth of ``fn()`` in MB, as text (``"n/a"`` when unknown)."""
    _, b = peak_bytes(fn)
    return "n/a" if b is None else f"{b / 2**20:.0f}"


class Counted:
    """Counts calls of a product function."""

    def __init__(self, fn, per_call=lambda *a, **k: 1):
        self.fn, self.n, self.per_call = fn, 0, per_call

    def __call__(self, *a, **k):
        self.n += self.per_call(*a, **k)
        return self.fn(*a, **k)


@contextlib.contextmanager
def seeded(seed: int):
    """Seed the global RNGs for an anchor that only reads them; restore afterwards."""
    state = np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002


@contextlib.contextmanager
def torch_eig_shim():
    """``torch.eig`` (removed from torch) for PyHessian's symmetric tridiagonal T."""
    def eig(T, eigenvectors=False):
        lam, U = torch.linalg.eigh(T)
        return torch.stack([lam, torch.zeros_like(lam)], 1), U

    had = hasattr(torch, "eig")
    torch.eig = eig
    try:
        yield
    finally:
        if not had:
            del torch.eig


def clear_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = None


# ---------------------------------------------------------------------- anchors
def anchors_available() -> dict[str, Any]:
    out = {}
    for name, mod in (("PyHessian", "pyhessian"), ("curvlinops", "curvlinops"),
                      ("hessian-eigenthings", "hessian_eigenthings")):
        try:
            out[name] = __import__(mod)
        except Exception as err:  # noqa: BLE001
            out[name] = err
    return out


def interleaved(fns: list, rounds: int, inner: int) -> list[float]:
    """Median wall time of each function: turns in a new order every round.

    Timing one path after another lets a drift in the machine's speed (other jobs, clock
    changes) land on whichever path ran at the time; taking turns, shuffled, spreads it
    over all. A turn is one untimed call and then ``inner`` timed ones: the first call
    after switching paths pays for what the previous path left behind (page faults of
    freed buffers, cold caches; measured here up to 1.6x a short call), which a user
    running one path in a loop (Lanczos, a training step) does not see. ``inner=0``:
    one timed call per turn, for calls long enough to amortise the switch.
    """
    for fn in fns:
        fn()  # warm-up
    ts: list[list[float]] = [[] for _ in fns]
    order = np.random.default_rng(0)
    for _ in range(rounds):
        for i in order.permutation(len(fns)):
            if inner:
                fns[i]()
            for _ in range(max(inner, 1)):
                sync()
                t0 = time.perf_counter()
                fns[i]()
                sync()
                ts[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in ts]
