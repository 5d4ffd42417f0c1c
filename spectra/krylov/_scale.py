r"""Scale-safe arithmetic for the Krylov methods (:doc:`/theory/lanczos`, "Scale").

A Lanczos run on :math:`cA` must give :math:`c` times the results for :math:`A` over
the whole floating-point range in which :math:`cA`'s entries are normal numbers.
Squaring in a norm overflows from :math:`|x| \approx 10^{154}` and underflows below
:math:`10^{-154}` (float64), and absolute thresholds are not scale-free.  The methods
therefore multiply every product by one power of two :math:`2^{-e}`, chosen from the
first product so that its largest entry lies in :math:`[1/2, 1)`: multiplying by a
power of two is exact (for normal results), so the run on :math:`2^{-e} A` is the run
on :math:`A'` of unit scale, and its scalars are multiplied back by :math:`2^{e}` at
the end, exactly.  For :math:`c` a power of two the results are bitwise :math:`c`
times those for :math:`A`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import coldots, from_numpy, power_of_two, to_numpy
from ..results import NonFiniteError

__all__ = ["column_norms", "product_scale", "real_array", "real_product", "unit_columns"]


def _kind(x: Any) -> str:
    if hasattr(x, "is_complex"):  # torch
        return "c" if x.is_complex() else ("f" if x.is_floating_point() else "i")
    return np.asarray(x).dtype.kind if not hasattr(x, "dtype") else np.dtype(x.dtype).kind


def real_product(W: Any, where: str) -> Any:
    """``W`` if it holds real floating-point numbers, else a :class:`TypeError`.

    A complex product would lose its imaginary part silently in the real basis.
    """
    kind = _kind(W)
    if kind != "f":
        what = "complex numbers" if kind == "c" else f"dtype {W.dtype}"
        raise TypeError(f"the operator's product returned {what} at {where}; the Krylov "
                        "methods need a real symmetric operator returning real floats")
    return W


def real_array(v0: Any, name: str = "v0") -> np.ndarray:
    """``v0`` as a host float64 array, refusing strings, complex, bool and object entries.

    Raises
    ------
    TypeError
        Not an array (or nested sequence) of real numbers.
    """
    if isinstance(v0, (str, bytes)) or not (hasattr(v0, "shape") or hasattr(v0, "__len__")):
        raise TypeError(f"{name} must be an array of real numbers (or None for a random "
                        f"start), got {v0!r}")
    try:
        kind = _kind(v0)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers, got {v0!r}") from err
    if kind not in "fiu":
        what = {"c": "complex", "b": "bool", "O": "object", "U": "strings"}.get(kind, kind)
        raise TypeError(f"{name} must be an array of real numbers (float or int), got "
                        f"{what} entries; the Krylov methods work on real symmetric operators")
    return to_numpy(v0)


def product_scale(W: Any, xp: Any, where: str) -> float:
    """The power of two ``2**-e`` that brings ``max |W|`` into ``[1/2, 1)`` (1 for zero).

    Raises
    ------
    NonFiniteError
        When ``W`` holds NaN or Inf (``where`` names the product).
    """
    m = float(to_numpy(xp.max(xp.abs(W)))) if W.shape[0] else 0.0
    if not math.isfinite(m):
        raise NonFiniteError(f"the operator's product returned NaN or Inf at {where}; "
                             "check the operator")
    return 1.0 / power_of_two(m)


def column_norms(V: Any, xp: Any) -> np.ndarray:
    """Euclidean norms of the columns of ``V`` (host float64) without over/underflow.

    Each column is divided by a power of two near its largest entry before squaring, and
    the squares are summed in float64 (:func:`~spectra.backend.coldots`): a float32
    ``vector_norm`` over two million entries was off by ``5e-5`` relative, which left a
    Lanczos start vector that far from unit norm.
    """
    m = to_numpy(xp.max(xp.abs(V), axis=0))
    if not np.all(np.isfinite(m)):
        return np.full(m.shape, np.nan)
    e = np.frexp(np.where(m > 0, m, 1.0))[1]
    s = np.ldexp(1.0, -e)
    Vs = V * from_numpy(s, like=V)[None, :]
    return np.sqrt(coldots(Vs, Vs)) / s


def unit_columns(V: Any, xp: Any) -> tuple[Any, np.ndarray]:
    """``V`` with unit columns and the column norms, scale-safe (see :func:`column_norms`)."""
    norms = column_norms(V, xp)
    return V / from_numpy(np.where(norms > 0, norms, 1.0), like=V)[None, :], norms
