r"""Kernel matrices :math:`K_{ij} = k(x_i, x_j)` as operators that are never formed.

:func:`kernel_operator` wraps ``N`` points ``X`` (``N x d``, numpy or torch) and a
kernel as an :class:`~spectra.Operator` for the ``N x N`` matrix :math:`K + sI`.
Products are computed block by block and ``K`` is never held, and
:meth:`KernelOperator.block` returns dense principal blocks (the block sampler that
:func:`freedecomp.decompress` takes).

Kernels (``h`` the bandwidth, :math:`r = \|x - y\|`; all PSD except as noted):

* ``rbf``: :math:`\exp(-r^2 / (2h^2))`;
* ``laplace``: :math:`\exp(-r / h)`;
* ``matern32``: :math:`(1 + \sqrt3\, r/h)\, e^{-\sqrt3\, r/h}`;
* ``matern52``: :math:`(1 + \sqrt5\, r/h + 5r^2/(3h^2))\, e^{-\sqrt5\, r/h}`;
* ``polynomial``: :math:`(\gamma\, x^T y + c)^p` with ``gamma`` (default ``1/d``),
  ``coef0`` ``c`` (default 1) and ``degree`` ``p`` (default 3); PSD when ``c >= 0``;
* ``linear``: :math:`x^T y`; ``cosine``: :math:`x^T y / (\|x\|\,\|y\|)`;
* a callable ``kernel(A, B)`` returning the ``len(A) x len(B)`` block of a symmetric
  kernel (PSD only if declared with ``psd=True``).

**Bandwidth.** When ``bandwidth`` is not given it is the *median heuristic*: the
median Euclidean distance between distinct pairs of a uniformly random subsample of
at most ``max_points = 1000`` points, drawn with ``rng`` (default ``0``, so the same
``X`` always gets the same bandwidth) (Garreau, Jitkrittum & Kanagawa 2017).

**Products** (numpy input). Distance kernels use
:math:`\|x_i - x_j\|^2 = \|x_i\|^2 + \|x_j\|^2 - 2 x_i^T x_j` on centred points (the
kernel is translation invariant; centring limits the cancellation). ``K`` is
symmetric, so only the upper triangle is evaluated, each off-diagonal entry once,
contributing both :math:`K_{ij} v_j` to row ``i`` and :math:`K_{ij} v_i` to row ``j``.
One Numba pass per thread (``spectra._numba.kernels.kernel_matmat_part``, run on a small
thread pool; the cores release the GIL) takes tasks of 64 rows, dealt cyclically to
balance the triangle, and walks their columns in chunks of ``block_size`` points: the
inner products of 4 rows with a chunk come from 4 x 4 register blocks of dot
products (the chunk stays in L2; on one core about 95% of the BLAS GEMM rate at
``d = 64``), and each row is turned into kernel values in L1 and multiplied at once,
never written to memory as a matrix. The exponential is written so that LLVM
vectorises it (Cody--Waite range reduction, a Taylor polynomial, :math:`2^k` through
the exponent bits; pip Numba has no SVML). Squared distances below ``1e-4``
(float32: ``1e-2``) of :math:`\|x_i\|^2 + \|x_j\|^2` are recomputed from
coordinates for the kernels of :math:`r = \sqrt{r^2}` (whose slope is infinite at 0),
and a point's distance to itself is exactly 0. Memory: :math:`O(Nd)` for the centred
points plus one ``N x k`` accumulator per thread; ``K`` is never held. Linear and
cosine kernels are products of ``N x d`` factors, :math:`K V = Z (Z^T V)`. Torch input
on the CPU shares that Numba pass through zero-copy views; on CUDA it runs ``b x b``
tiles (``b = block_size``, memory :math:`O(b^2)`) with torch operations on the device,
also over the upper tile triangle. A callable
kernel is evaluated tile by tile. :meth:`KernelOperator.block` evaluates dense blocks
(a GEMM, then the same kernel-value pass).

References
----------
.. [1] C. E. Rasmussen and C. K. I. Williams, *Gaussian Processes for Machine
   Learning*, MIT Press (2006), ch. 4 (Matérn kernels).
.. [2] D. Garreau, W. Jitkrittum and M. Kanagawa, "Large sample analysis of the median
   heuristic", arXiv:1707.07269 (2017).
.. [3] W. J. Cody and W. Waite, *Software Manual for the Elementary Functions*,
   Prentice-Hall (1980) (range reduction of exp).
.. [4] B. Charlier, J. Feydy, J. A. Glaunès, F.-D. Collin and G. Durif, "Kernel
   operations on the GPU, with autodiff, without memory overflows", JMLR 22 (2021)
   (KeOps: the tiled, never-formed kernel product).
.. [5] C. K. I. Williams and M. Seeger, "Using the Nyström method to speed up kernel
   machines", NeurIPS (2001) (principal blocks of kernel matrices).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import dtype_name, is_torch
from ..probes import as_rng
from ..results import NonFiniteError
from ..validation import check_float, check_int
from ._kernel_products import _CODES, _host, _KernelProducts, _torch
from .base import Operator

__all__ = ["KERNELS", "KernelOperator", "kernel_operator", "median_bandwidth"]

#: Kernel names accepted by :func:`kernel_operator` (besides a callable).
KERNELS = ("rbf", "laplace", "matern32", "matern52", "polynomial", "linear", "cosine")
_ALIASES = {"gaussian": "rbf", "laplacian": "laplace"}
_SCALE = {"rbf": lambda h: 1.0 / (2.0 * h * h), "laplace": lambda h: 1.0 / h,
          "matern32": lambda h: math.sqrt(3.0) / h, "matern52": lambda h: math.sqrt(5.0) / h}
_PARAMS = {"polynomial": ("degree", "gamma", "coef0"), "callable": ("psd",)}
#: Relative threshold below which a squared distance is recomputed from coordinates.
_RECOMPUTE = {"float64": 1e-4, "float32": 1e-2}


def _as_points(X: Any) -> Any:
    """Validate ``X`` (2-d, non-empty, finite, real) and return it as float32/float64."""
    if X is None or isinstance(X, (str, bytes, dict)) or np.isscalar(X):
        raise TypeError(f"X must be an (N, d) array of points (numpy or torch), got {X!r}")
    if is_torch(X):
        X = X.detach()  # products are not differentiated through the points
        if X.is_complex() or X.dtype in (_torch().float16, _torch().bfloat16):
            raise TypeError(f"X has dtype {dtype_name(X.dtype)}; allowed: float32, float64 "
                            "(integers are converted to float64)")
        if not X.is_floating_point():
            X = X.to(_torch().float64)
    else:
        X = np.asarray(X)
        if X.dtype.kind in "biu":
            X = X.astype(np.float64)
        if X.dtype not in (np.float32, np.float64):
            raise TypeError(f"X has dtype {X.dtype}; allowed: float32, float64 "
                            "(integers are converted to float64)")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d (points x features), got shape {tuple(X.shape)}; "
                         "for one feature use X[:, None]")
    if X.shape[0] == 0:
        raise ValueError("X has no points (shape[0] == 0); a kernel matrix needs at least one")
    if X.shape[1] == 0:
        raise ValueError("X has no features (shape[1] == 0)")
    bad = int((~(X.isfinite() if is_torch(X) else np.isfinite(X))).sum())
    if bad:
        raise ValueError(f"X contains {bad} NaN or Inf entries; kernel values would be NaN")
    return X


def _positive_int(value: Any, what: str) -> int:
    """:func:`~spectra.validation.check_int` with ``low=1``, refusing with ``ValueError`` only.

    Bad kernel settings have always raised ``ValueError``, whatever their type.
    """
    try:
        return check_int(value, what, low=1)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def median_bandwidth(X: Any, *, max_points: int = 1000, rng: Any = 0) -> float:
    r"""Median heuristic: the median distance between distinct pairs of points.

    Parameters
    ----------
    X : array_like or torch.Tensor, shape ``(N, d)``
        Points (validated as in :func:`kernel_operator`).
    max_points : int
        Subsample size; ``min(N, max_points)`` points drawn uniformly without
        replacement, and the median is over their :math:`m(m-1)/2` pairs.
    rng : None, int or numpy Generator
        Source of the subsample (default ``0``: deterministic).

    Returns
    -------
    float
        :math:`\operatorname{median}_{i<j} \|x_i - x_j\|` over the subsample.

    Raises
    ------
    ValueError
        Fewer than two points, or a median of zero (mostly duplicate points): pass a
        bandwidth instead.
    """
    Xh = _host(_as_points(X))
    N = Xh.shape[0]
    if N < 2:
        raise ValueError("the median heuristic needs at least 2 points; pass bandwidth=")
    m = min(N, check_int(max_points, "max_points", low=2))
    idx = np.sort(as_rng(rng).choice(N, size=m, replace=False)) if m < N else np.arange(N)
    S = Xh[idx].astype(np.float64)
    S -= S.mean(axis=0)
    sq = np.einsum("ij,ij->i", S, S)
    iu = np.triu_indices(m, 1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (S @ S.T))[iu]
    med = float(np.sqrt(np.median(np.maximum(d2, 0.0))))
    if not med > 0:
        raise ValueError("the median pairwise distance is 0 (mostly duplicate points); "
                         "pass a positive bandwidth= explicitly")
    return med


def kernel_operator(X: Any, kernel: str | Callable = "rbf", *, bandwidth: float | None = None,
                    shift: float = 0.0, block_size: int | None = None, rng: Any = 0,
                    **params: Any) -> KernelOperator:
    r"""The kernel matrix :math:`K(X, X) + sI` as an operator that is never formed.

    Parameters
    ----------
    X : array_like or torch.Tensor, shape ``(N, d)``
        The points, float32 or float64 (integers become float64). The operator's
        dtype follows ``X``; torch input gives a torch operator on ``X``'s device.
    kernel : str or callable
        One of :data:`KERNELS` (see the module docstring for the formulas; aliases
        ``"gaussian"``, ``"laplacian"``), or ``kernel(A, B)`` returning the
        ``len(A) x len(B)`` block of a symmetric kernel (arrays of ``X``'s kind).
    bandwidth : float, optional
        Length scale ``h > 0`` of rbf, laplace and the Matérn kernels; default the
        median heuristic (:func:`median_bandwidth` with ``rng``).
    shift : float
        ``s`` in :math:`K + sI` (a regularised kernel, e.g. a ridge or GP noise term).
    block_size : int, optional
        numpy and torch on the CPU: columns per chunk of the fused pass (default: as many
        points as fit in 256 KiB, between 64 and 512); rows per task are
        ``min(64, block_size)``. torch on CUDA: the tile side ``b`` (memory
        :math:`O(b^2)`; default 4096).
    rng : None, int or numpy Generator
        Randomness of the median heuristic (default ``0``).
    **params
        ``polynomial``: ``degree`` (int >= 1, default 3), ``gamma`` (> 0, default
        ``1/d``), ``coef0`` (default 1). Callable: ``psd`` (bool, default False).

    Returns
    -------
    KernelOperator
        Symmetric; ``psd`` set for the PSD kernels with ``shift >= 0``.

    Raises
    ------
    ValueError
        Bad ``X`` (NaN/Inf, no points, not 2-d), a non-positive bandwidth or block
        size, an unknown kernel, a callable that returns the wrong shape, non-finite
        or asymmetric values.
    TypeError
        Unknown parameters, or an unsupported dtype.

    Examples
    --------
    >>> import numpy as np, spectra
    >>> X = np.random.default_rng(0).standard_normal((300, 3))
    >>> K = spectra.kernel_operator(X, "rbf", bandwidth=1.0)
    >>> v = np.ones(300)
    >>> bool(np.allclose(K @ v, K.block(np.arange(300), np.arange(300)) @ v))
    True
    """
    return KernelOperator(X, kernel, bandwidth=bandwidth, shift=shift, block_size=block_size,
                          rng=rng, **params)


class KernelOperator(_KernelProducts, Operator):
    """An implicit kernel matrix; build it with :func:`kernel_operator`.

    Attributes
    ----------
    X : array or torch.Tensor
        The points as given (converted to float).
    kernel : str or callable
    bandwidth : float or None
    params : dict
        Resolved kernel parameters.
    shift : float
    block_size : int
    """

    def __init__(self, X: Any, kernel: str | Callable = "rbf", *,
                 bandwidth: float | None = None, shift: float = 0.0,
                 block_size: int | None = None, rng: Any = 0, **params: Any) -> None:
        X = _as_points(X)
        torch_in = is_torch(X)
        N, d = X.shape
        name = self._kernel_name(kernel)
        allowed = _PARAMS.get("callable" if name is None else name, ())
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise TypeError(f"unknown parameters {unknown} for the "
                            f"{'callable' if name is None else name} kernel; allowed: "
                            f"{', '.join(allowed) if allowed else 'none'}")
        self.X, self.kernel = X, (kernel if name is None else name)
        self.bandwidth = self._resolve_bandwidth(name, bandwidth, rng)
        self.params = self._resolve_params(name, d, params)
        self.shift = check_float(shift, "shift")
        self.block_size = self._resolve_block(block_size, X)
        base_psd = (self.params.get("psd", False) if name is None else
                    name != "polynomial" or self.params["coef0"] >= 0)
        self._base_psd = bool(base_psd)
        super().__init__((N, N), X.dtype, device=X.device if torch_in else "cpu",
                         symmetric=True, psd=self._base_psd and self.shift >= 0,
                         backend="torch" if torch_in else "numpy")
        self._prepare()
        if name is None:
            self._check_callable()

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _kernel_name(kernel: Any) -> str | None:
        if callable(kernel):
            return None
        if not isinstance(kernel, str):
            raise TypeError(f"kernel must be a name or a callable, got {type(kernel).__name__}")
        name = _ALIASES.get(kernel.lower(), kernel.lower())
        if name not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; allowed: {', '.join(KERNELS)} "
                             "or a callable kernel(A, B)")
        return name

    def _resolve_bandwidth(self, name: str | None, bandwidth: Any, rng: Any) -> float | None:
        if name not in _SCALE:
            if bandwidth is not None:
                raise ValueError(f"the {name or 'callable'} kernel has no bandwidth; "
                                 "bandwidth= applies to rbf, laplace, matern32, matern52")
            return None
        if bandwidth is None:
            return median_bandwidth(self.X, rng=rng)
        return check_float(bandwidth, "bandwidth", low=0.0, low_open=True,
                           hint=" (a length scale: positive and finite)")

    @staticmethod
    def _resolve_params(name: str | None, d: int, params: dict) -> dict:
        if name is None:
            return {"psd": bool(params.get("psd", False))}
        if name != "polynomial":
            return {}
        degree = _positive_int(params.get("degree", 3), "degree")
        gamma = check_float(params.get("gamma", 1.0 / d), "gamma", low=0.0, low_open=True)
        coef0 = check_float(params.get("coef0", 1.0), "coef0")
        return {"degree": degree, "gamma": gamma, "coef0": coef0}

    @staticmethod
    def _resolve_block(block_size: Any, X: Any) -> int:
        if block_size is None:
            if is_torch(X) and X.device.type != "cpu":
                return 4096
            # a chunk of points (block_size x d) in 256 KiB of L2, 64 to 512 points
            fit = (256 * 1024) // (X.shape[1] * X.dtype.itemsize)
            return int(min(512, max(64, fit - fit % 4)))
        return _positive_int(block_size, "block_size")

    def _prepare(self) -> None:
        """Centred points and squared norms (distance kernels) or the factor ``Z``."""
        X, name = self.X, self.kernel
        xp = _torch() if is_torch(X) else np
        if name in _SCALE:
            self._P = X - X.mean(0, keepdims=True) if xp is np else X - X.mean(0, keepdim=True)
        else:
            self._P = X
        if xp is np:
            self._P = np.ascontiguousarray(self._P)
        else:
            self._P = self._P.contiguous()
        P64 = self._P.to(_torch().float64) if xp is not np else self._P.astype(np.float64)
        self._sq = (P64 * P64).sum(1).to(X.dtype) if xp is not np else \
            np.einsum("ij,ij->i", P64, P64).astype(X.dtype)
        if name == "cosine":
            if bool((self._sq == 0).any()):
                raise ValueError("X has rows of zero norm: the cosine kernel is undefined there")
            norms = self._sq**0.5
            self._P = self._P / norms[:, None]
        if name in _CODES:
            a = (_SCALE[name](self.bandwidth) if name in _SCALE else self.params["gamma"])
            b = self.params.get("coef0", 0.0)
            thr = _RECOMPUTE[dtype_name(X.dtype)]
            self._prm = np.array([a, b, 1.0, 0.0, 1.0 / 3.0, thr], dtype=dtype_name(X.dtype))

    def _check_callable(self) -> None:
        """Evaluate the callable on a few points: shape, finiteness and symmetry."""
        m = min(self.shape[0], 16)
        B = self._call(self.X[:m], self.X[:m])
        Bh = _host(B).astype(np.float64)
        asym = float(np.abs(Bh - Bh.T).max())
        if asym > 1e-6 * max(float(np.abs(Bh).max()), 1e-300):
            raise ValueError(f"the kernel callable is not symmetric: k(A, A) differs from its "
                             f"transpose by {asym:.2e} on the first {m} points")

    def _call(self, A: Any, B: Any) -> Any:
        out = self.kernel(A, B)
        shape = tuple(getattr(out, "shape", ()))
        if shape != (A.shape[0], B.shape[0]):
            raise ValueError(f"the kernel callable returned shape {shape} for blocks of "
                             f"{A.shape[0]} and {B.shape[0]} points; expected "
                             f"({A.shape[0]}, {B.shape[0]})")
        if self.backend == "torch":
            out = _torch().as_tensor(out, dtype=self.dtype, device=self.device)
            ok = bool(out.isfinite().all())
        else:
            out = np.asarray(out, dtype=self.dtype)
            ok = bool(np.isfinite(out).all())
        if not ok:
            raise NonFiniteError("the kernel callable returned NaN or Inf values")
        return out

    # ------------------------------------------------------------------ public API
    def __repr__(self) -> str:
        kname = self.kernel if isinstance(self.kernel, str) else "callable"
        h = f", bandwidth={self.bandwidth:.4g}" if self.bandwidth is not None else ""
        return (f"KernelOperator(kernel={kname}{h}, shape={self.shape}, "
                f"dtype={dtype_name(self.dtype)}, device={self.device}, shift={self.shift:g}, "
                f"psd={self.psd})")

    def shifted(self, s: float) -> KernelOperator:
        """Return the operator of ``K + (shift + s) I`` (the points are shared)."""
        s = check_float(s, "the shift")
        out = copy.copy(self)
        out.shift = self.shift + s
        out.psd = self._base_psd and out.shift >= 0
        out.num_matvecs = 0
        return out

    def diagonal(self) -> Any:
        """The diagonal :math:`k(x_i, x_i) + s`, shape ``(N,)``, in the operator's namespace."""
        name = self.kernel
        if name in _SCALE or name == "cosine":
            base = self._like_full(1.0)
        elif name == "polynomial":
            p = self.params
            base = (p["gamma"] * self._sq + p["coef0"]) ** p["degree"]
        elif name == "linear":
            base = self._sq * 1
        else:
            parts = [self._diag_of(self._call(self.X[r0:r0 + self.block_size],
                                              self.X[r0:r0 + self.block_size]))
                     for r0 in range(0, self.shape[0], self.block_size)]
            base = _torch().cat(parts) if self.backend == "torch" else np.concatenate(parts)
        return base + self.shift

    def block(self, rows: Any, cols: Any) -> Any:
        """Dense block ``(K + sI)[rows][:, cols]`` (the shift lands where ``rows[i] == cols[j]``).

        Parameters
        ----------
        rows, cols : array_like of int or slice
            Point indices in ``[0, N)``; ``block(idx, idx)`` is a principal submatrix.

        Returns
        -------
        array, shape ``(len(rows), len(cols))``
            numpy or torch (on the operator's device), in the operator's dtype.
        """
        r, c = self._indices(rows, "rows"), self._indices(cols, "cols")
        same = np.nonzero(r[:, None] == c[None, :])
        name = self.kernel
        if not isinstance(name, str):
            out = self._call(self.X[self._index(r)], self.X[self._index(c)])
        elif name in ("linear", "cosine"):
            out = self._P[self._index(r)] @ self._P[self._index(c)].T
        else:
            out = self._tile_values(self._index(r), self._index(c), same)
        if self.shift != 0 and same[0].size:
            out[self._index(same[0]), self._index(same[1])] += self.shift
        return out

    # ------------------------------------------------------------------ helpers
    def _indices(self, idx: Any, what: str) -> np.ndarray:
        N = self.shape[0]
        if isinstance(idx, slice):
            return np.arange(N)[idx]
        if is_torch(idx):
            idx = idx.detach().cpu().numpy()
        arr = np.asarray(idx)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"{what} must be a 1-d array of integer indices or a slice, "
                             f"got shape {arr.shape} and dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= N):
            raise ValueError(f"{what} must lie in [0, {N}), got values in "
                             f"[{arr.min()}, {arr.max()}]")
        return arr

    def _index(self, idx: np.ndarray) -> Any:
        if self.backend == "torch":
            return _torch().as_tensor(idx, device=self.device)
        return idx

    def _like_full(self, value: float) -> Any:
        if self.backend == "torch":
            return _torch().full((self.shape[0],), value, dtype=self.dtype, device=self.device)
        return np.full(self.shape[0], value, dtype=self.dtype)

    def _diag_of(self, B: Any) -> Any:
        return B.diagonal().clone() if self.backend == "torch" else np.diagonal(B).copy()

    # ------------------------------------------------------------------ products
    def _matvec(self, v: Any) -> Any:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: Any) -> Any:
        if self.backend == "torch":
            V = _torch().as_tensor(V, dtype=self.dtype, device=self.device)
            finite = bool(V.isfinite().all())
        else:
            V = np.asarray(V, dtype=self.dtype)
            finite = bool(np.isfinite(V).all())
        if not finite:
            raise ValueError("the vectors contain NaN or Inf entries")
        name = self.kernel
        if name in ("linear", "cosine"):
            out = self._P @ (self._P.T @ V)
        elif not isinstance(name, str):
            out = self._tiles_callable(V)
        elif self.backend == "numpy":
            out = self._tiles_numpy(V, self._P, self._sq)
        elif self.device.type == "cpu":  # the Numba pass on zero-copy views
            out = _torch().from_numpy(self._tiles_numpy(V.detach().numpy(), self._P.numpy(),
                                                        self._sq.numpy()))
        else:
            out = self._tiles_torch(V)
        return out + self.shift * V if self.shift != 0 else out
