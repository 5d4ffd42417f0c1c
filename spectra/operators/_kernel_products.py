r"""The product passes of :class:`~spectra.operators.KernelOperator`: tiles and threads.

:class:`_KernelProducts` holds the passes that compute :math:`K V` and dense blocks
without forming :math:`K`: the fused Numba pass on numpy (and CPU torch) points, one
share per thread of a small shared thread pool (the compiled cores release the GIL),
``b x b`` tiles with torch operations on CUDA, and tile by tile for a callable kernel.
The algorithms are described in :mod:`spectra.operators.kernels`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import is_torch

#: Kernel codes of the compiled passes (see :mod:`spectra._numba.kernels`).
_CODES = {"rbf": 0, "laplace": 1, "matern32": 2, "matern52": 3, "polynomial": 4}


def _torch():
    import torch

    return torch


def _host(X: Any) -> np.ndarray:
    return X.detach().cpu().numpy() if is_torch(X) else np.asarray(X)


class _KernelProducts:
    """Mixin of :class:`~spectra.operators.KernelOperator`: its products and blocks.

    Uses the operator's prepared points ``_P``, squared norms ``_sq``, kernel
    parameters ``_prm``/``params``, ``kernel``, ``block_size``, ``shape``, ``dtype``,
    ``device``, ``backend`` and its ``_call``/``_index`` helpers.
    """

    def _tile_values(self, r: Any, c: Any, same: tuple) -> Any:
        """Kernel values of rows ``r`` against rows ``c`` (index arrays), as a new array."""
        P, sq = self._P, self._sq
        Pr, Pc = P[r], P[c]
        G = Pr @ Pc.T
        code = _CODES[self.kernel]
        if code != 4 and same[0].size:  # the same point: distance exactly 0
            i, j = self._index(same[0]), self._index(same[1])
            G[i, j] = sq[r][i]
        if self.backend == "torch":
            _torch_kernel_(G, sq[r], sq[c], Pr, Pc, self.kernel, self._prm, self.params)
            return G
        from .._numba.kernels import kernel_rows_eval

        sr, sc = np.ascontiguousarray(sq[r]), np.ascontiguousarray(sq[c])
        b, degree = G.shape[0], self.params.get("degree", 1)
        nt = _threads(b // 64)
        bounds = [b * t // nt for t in range(nt + 1)]
        _run_threads(lambda t: kernel_rows_eval(G, sr, sc, Pr, Pc, code, self._prm, degree,
                                                bounds[t], bounds[t + 1]), nt)
        return G


    def _tiles(self):
        """Tile offsets ``(r0, r1, c0, c1)`` of the upper tile triangle."""
        N, b = self.shape[0], self.block_size
        for r0 in range(0, N, b):
            for c0 in range(r0, N, b):
                yield r0, min(N, r0 + b), c0, min(N, c0 + b)

    def _tiles_numpy(self, V: np.ndarray, P: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """The fused Numba pass, one share per thread (``_numba.kernels.kernel_matmat_part``)."""
        from .._numba.kernels import kernel_matmat_part

        N = self.shape[0]
        rows, chunk = min(self.block_size, 64), self.block_size
        nt = _threads(-(-N // rows))
        Vt = np.ascontiguousarray(V.T)
        acc = np.empty((nt, *Vt.shape), dtype=P.dtype)
        code, degree = _CODES[self.kernel], self.params.get("degree", 1)
        _run_threads(lambda t: kernel_matmat_part(P, sq, Vt, acc[t], t, nt, code,
                                                  self._prm, degree, rows, chunk), nt)
        return np.ascontiguousarray(acc.sum(axis=0).T)

    def _tiles_torch(self, V: Any) -> Any:
        torch = _torch()
        P, sq = self._P, self._sq
        out = torch.zeros_like(V)
        b = min(self.block_size, self.shape[0])
        buf = torch.empty(b * b, dtype=self.dtype, device=self.device)
        for r0, r1, c0, c1 in self._tiles():
            G = buf[: (r1 - r0) * (c1 - c0)].view(r1 - r0, c1 - c0)
            torch.mm(P[r0:r1], P[c0:c1].T, out=G)
            if r0 == c0 and self.kernel != "polynomial":
                G.diagonal().copy_(sq[r0:r1])
            _torch_kernel_(G, sq[r0:r1], sq[c0:c1], P[r0:r1], P[c0:c1], self.kernel, self._prm,
                           self.params)
            out[r0:r1].addmm_(G, V[c0:c1])
            if c0 != r0:
                out[c0:c1].addmm_(G.T, V[r0:r1])
        return out

    def _tiles_callable(self, V: Any) -> Any:
        out = V * 0
        X = self.X
        for r0, r1, c0, c1 in self._tiles():
            B = self._call(X[r0:r1], X[c0:c1])
            out[r0:r1] += B @ V[c0:c1]
            if c0 != r0:
                out[c0:c1] += B.T @ V[r0:r1]
        return out



def _torch_kernel_(G: Any, sq_r: Any, sq_c: Any, Pr: Any, Pc: Any, name: str, prm: np.ndarray,
                   params: dict) -> None:
    """Turn inner products ``G = P_r P_c^T`` into kernel values in place (torch ops)."""
    a, b, thr = float(prm[0]), float(prm[1]), float(prm[5])
    if name == "polynomial":
        G.mul_(a).add_(b).pow_(params["degree"])
        return
    if name == "rbf":
        G.mul_(2).sub_(sq_r[:, None]).sub_(sq_c[None, :]).clamp_(max=0).mul_(a).exp_()
        return
    G.mul_(-2).add_(sq_r[:, None]).add_(sq_c[None, :]).clamp_(min=0)
    near = (G < thr * (sq_r[:, None] + sq_c[None, :])).nonzero()
    if near.shape[0]:  # cancellation in the expansion: recompute near-duplicate pairs
        i, j = near[:, 0], near[:, 1]
        G[i, j] = ((Pr[i] - Pc[j]) ** 2).sum(1)
    G.sqrt_().mul_(a)
    if name == "laplace":
        G.neg_().exp_()
    elif name == "matern32":
        G.copy_((1 + G) * (-G).exp())
    else:
        G.copy_((1 + G + G * G / 3) * (-G).exp())


_POOL: dict[str, Any] = {}
_POOL_LOCK = threading.Lock()


def _threads(tasks: int) -> int:
    """Threads for ``tasks`` independent tasks: Numba's thread count, at most ``tasks``."""
    import numba

    return max(1, min(numba.get_num_threads(), tasks))


def _run_threads(fn: Callable[[int], None], nt: int) -> None:
    """Run ``fn(t)`` for ``t < nt``: ``t = 0`` here, the others on a shared thread pool.

    The Numba cores release the GIL (``nogil=True``), so the threads run in parallel;
    a plain pool compiles far faster than Numba's ``parallel=True`` lowering.
    """
    if nt > 1:
        with _POOL_LOCK:
            pool = _POOL.get("pool")
            if pool is None or pool._max_workers < nt - 1:
                from concurrent.futures import ThreadPoolExecutor

                pool = _POOL["pool"] = ThreadPoolExecutor(max_workers=nt - 1,
                                                          thread_name_prefix="kernel_operator")
        futures = [pool.submit(fn, t) for t in range(1, nt)]
    fn(0)
    if nt > 1:
        for f in futures:
            f.result()
