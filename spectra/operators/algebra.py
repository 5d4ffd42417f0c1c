r"""Operator algebra: sums, differences, scalar multiples and shifts, and the identity.

Every :class:`~spectra.Operator` (curvature operators of :mod:`hessian` included)
combines with the Python operators

* ``a * op``, ``op * a``, ``op / a``, ``-op``: the scaled operator :math:`aA`;
* ``op1 + op2``, ``op1 - op2``: :math:`A_1 \pm A_2` (same shape, dtype, framework and
  device);
* ``op + s * identity(n)``: the shift :math:`A + sI`, the one spelling of a shift.
  Adding a plain number (``op + s``) is refused: numpy would read it as adding ``s``
  to every entry.

Products are formed from the products of the terms, never from a matrix; the terms
count their own products too. The result keeps the flags that provably still hold:

=====================  ===========================  =====================================
operation              symmetric                    positive semi-definite
=====================  ===========================  =====================================
``a * A``              as ``A``                     ``A`` psd and ``a >= 0``
``A + B``              both symmetric (``None`` if  both psd
                       either is unknown)
``A - B``              as for ``A + B``             never claimed
``A + s I``            as ``A``                     ``A`` psd and ``s >= 0``
=====================  ===========================  =====================================

:meth:`~spectra.Operator.to_scipy` gives a scipy ``LinearOperator`` with the same
products for scipy code.
"""

from __future__ import annotations

from typing import Any

from ..backend import dtype_name
from ..validation import check_float, check_int
from .base import Operator

__all__ = ["ScaledIdentity", "identity"]


def _flag_and(a: bool | None, b: bool | None) -> bool | None:
    """Symmetry flag of a sum of two operators.

    ``True`` if both terms are symmetric, ``False`` if exactly one is, ``None``
    (unknown: ``A + A^T`` is symmetric) otherwise.
    """
    if a is True and b is True:
        return True
    if (a is True and b is False) or (a is False and b is True):
        return False
    return None


class ScaledIdentity(Operator):
    """The operator :math:`sI_n`; build it with :func:`identity` and scalar products.

    Its products take the framework, dtype and device of the vector they are given, so
    ``op + s * identity(n)`` works for numpy and torch operators alike.
    """

    def __init__(self, n: int, scale: float = 1.0, dtype: Any = None) -> None:
        import numpy as np

        super().__init__((n, n), np.float64 if dtype is None else dtype, symmetric=True,
                         psd=scale >= 0)
        self.scale = float(scale)

    def _matvec(self, v):
        return v * self.scale if self.scale != 1.0 else v + 0  # a copy, never the input

    def _matmat(self, V):
        return self._matvec(V)

    def _checked(self, out, shape, what):  # the caller's framework and dtype
        return out

    def __repr__(self) -> str:
        return f"ScaledIdentity(n={self.shape[0]}, scale={self.scale:g})"


def identity(n: int) -> ScaledIdentity:
    """The identity operator :math:`I_n`, for shifts ``op + s * identity(n)``.

    Parameters
    ----------
    n : int
        Dimension.

    Returns
    -------
    ScaledIdentity

    Examples
    --------
    >>> import numpy as np, spectra
    >>> from spectra.operators import identity
    >>> op = spectra.as_operator(np.diag([1.0, 2.0]), psd=True) + 0.5 * identity(2)
    >>> op.matvec(np.ones(2)), op.psd
    (array([1.5, 2.5]), True)
    """
    return ScaledIdentity(check_int(n, "n", low=1))


class _Scaled(Operator):
    """:math:`aA`."""

    def __init__(self, op: Operator, a: float) -> None:
        super().__init__(op.shape, op.dtype, device=op.device, backend=op.backend,
                         symmetric=op.symmetric, psd=bool(op.psd and a >= 0))
        self.op, self.a = op, a

    def _matvec(self, v):
        return self.op.matvec(v) * self.a

    def _matmat(self, V):
        return self.op.matmat(V) * self.a

    def __repr__(self) -> str:
        return f"{self.a:g} * {self.op!r}"


class _Sum(Operator):
    """:math:`c_1A_1 + c_2A_2` with ``c = +-1`` (a scaled identity carries its own scale)."""

    def __init__(self, a: Operator, b: Operator, sign: float) -> None:
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"cannot add operators of shapes {a.shape} and {b.shape}")
        terms = [(1.0, a), (sign, b)]
        terms = [(1.0, ScaledIdentity(t.shape[0], c * t.scale)) if isinstance(t, ScaledIdentity)
                 else (c, t) for c, t in terms]
        main = [t for _, t in terms if not isinstance(t, ScaledIdentity)]
        if len(main) == 2:
            _require_compatible(*main)
        first = main[0]
        symmetric = _flag_and(a.symmetric, b.symmetric)
        psd = all(t.psd and c > 0 for c, t in terms)
        super().__init__(first.shape, first.dtype, device=first.device, backend=first.backend,
                         symmetric=symmetric, psd=psd)
        self.terms = terms

    def _combine(self, parts):
        (c1, x), (c2, y) = parts
        out = x if c1 > 0 else -x
        return out + y if c2 > 0 else out - y

    def _matvec(self, v):
        return self._combine([(c, t.matvec(v)) for c, t in self.terms])

    def _matmat(self, V):
        return self._combine([(c, t.matmat(V)) for c, t in self.terms])

    def __repr__(self) -> str:
        (_, a), (c, b) = self.terms
        return f"({a!r} {'+' if c > 0 else '-'} {b!r})"


def _require_compatible(a: Operator, b: Operator) -> None:
    if a.backend != b.backend:
        raise TypeError(f"cannot combine a {a.backend} operator with a {b.backend} one; "
                        "wrap both in the same framework")
    if dtype_name(a.dtype) != dtype_name(b.dtype):
        raise TypeError(f"cannot combine operators of dtypes {dtype_name(a.dtype)} and "
                        f"{dtype_name(b.dtype)}; convert one of them first")
    if a.backend == "torch" and str(a.device) != str(b.device):
        raise TypeError(f"cannot combine operators on devices {a.device} and {b.device}")


def scale(op: Operator, a: Any) -> Operator:
    """``a * op`` for a real scalar ``a`` (flags as in the module table)."""
    a = check_float(a, "the scalar multiplying an operator")
    if isinstance(op, ScaledIdentity):
        return ScaledIdentity(op.shape[0], a * op.scale)
    return _Scaled(op, a)


def add(a: Operator, b: Any, sign: float) -> Operator:
    """``a + b`` (``sign = 1``) or ``a - b`` (``sign = -1``) for operators."""
    if not isinstance(b, Operator):
        if isinstance(b, (int, float, complex)) or type(b).__module__ == "numpy":
            raise TypeError(
                "adding a number to an operator is ambiguous (numpy would add it to every "
                "entry); write op + s * spectra.operators.identity(n) for the shift A + sI"
            )
        return NotImplemented
    if isinstance(a, ScaledIdentity) and isinstance(b, ScaledIdentity):
        if a.shape != b.shape:
            raise ValueError(f"cannot add operators of shapes {a.shape} and {b.shape}")
        return ScaledIdentity(a.shape[0], a.scale + sign * b.scale)
    return _Sum(a, b, sign)
