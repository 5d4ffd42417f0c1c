"""The operator protocol: anything that multiplies a vector.

Every estimator in :mod:`spectra` accepts an :class:`Operator`, or anything
:func:`as_operator` can wrap: a numpy array, a scipy sparse matrix, a scipy
``LinearOperator``, a torch tensor (CPU or CUDA), or a matvec callable through
:meth:`Operator.from_matvec`.  Vectors handed to an operator live in its array
namespace, on its device and in its dtype; estimators keep them there.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import (
    absmax,
    coldots,
    dtype_name,
    from_numpy,
    is_torch,
    power_of_two,
    to_numpy,
    tolerance,
)
from ..results import NonFiniteError
from ..validation import check_bool, check_choice, check_optional_bool, check_shape
from ._inputs import (
    check_finite_entries,
    check_torch_tensor,
    exact_symmetry,
    is_linear_operator,
    is_sparse,
)

__all__ = ["Operator", "as_operator", "dense_matrix", "require_square", "require_symmetric",
           "wrapped_matrix"]

_ALLOWED = "float32 or float64 (real)"


def _check_dtype(dtype: Any, what: str) -> None:
    name = dtype_name(dtype)
    if name not in ("float32", "float64"):
        raise TypeError(
            f"{what} has dtype {name}; allowed dtypes are {_ALLOWED}. "
            "Convert it first, e.g. A.astype(numpy.float64) or A.double()."
        )


class Operator:
    """A linear map ``R^n -> R^m`` known only through products.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    dtype : numpy or torch dtype
        Working precision of the vectors, float32 or float64.
    device : str or torch.device, optional
        Where vectors live; ``"cpu"`` for numpy operators.
    symmetric : bool or None
        Declared symmetry. ``None`` means unknown: methods that need symmetry run a
        cheap randomised test (:meth:`check_symmetric`) once and cache the answer.
    psd : bool
        Declared positive semi-definiteness (used by XNysTrace and logdet).
    backend : {"numpy", "torch"}
        The array library of the vectors.

    Notes
    -----
    Subclasses implement :meth:`_matvec` and, when several vectors can be applied
    faster together, :meth:`_matmat`. The public :meth:`matvec` and :meth:`matmat`
    validate shapes and count products in :attr:`num_matvecs`.
    """

    #: ``True`` where the products raise :class:`NonFiniteError` themselves (one fused
    #: reduction, as :mod:`hessian`'s curvature operators): no separate ``absmax`` pass.
    _checks_finite = False

    def __init__(
        self,
        shape: tuple[int, int],
        dtype: Any,
        *,
        device: Any = "cpu",
        symmetric: bool | None = None,
        psd: bool = False,
        backend: str = "numpy",
    ) -> None:
        shape = check_shape(shape, "the operator's shape (m, n)")
        symmetric = check_optional_bool(symmetric, "symmetric")
        psd = check_bool(psd, "psd")
        _check_dtype(dtype, "the operator")
        check_choice(backend, "backend", ("numpy", "torch"))
        if symmetric and shape[0] != shape[1]:
            raise ValueError(f"a symmetric operator must be square, got shape {shape}")
        self.shape = shape
        self.dtype = dtype
        self.device = device
        self.symmetric = symmetric if shape[0] == shape[1] else False
        self.psd = bool(psd)
        self.backend = backend
        self.num_matvecs = 0

    # ------------------------------------------------------------------ products
    def _matvec(self, v):
        raise NotImplementedError

    def _matmat(self, V):
        cols = [self._matvec(V[:, j]) for j in range(V.shape[1])]
        return self.xp.stack(cols, axis=1)

    @property
    def xp(self):
        """The array namespace of the vectors (array-api-compat numpy or torch)."""
        if self.backend == "torch":
            import array_api_compat.torch as xp
        else:
            import array_api_compat.numpy as xp
        return xp

    def matvec(self, v):
        """Return ``A v`` for a vector ``v`` of length ``n``.

        The product is checked once, here: it must be an array of this operator's
        framework (numpy or torch) of shape ``(m,)`` and a real floating dtype (float32
        or float64; the other of the two is cast to the operator's dtype), with finite
        entries.

        Raises
        ------
        TypeError
            For a product that is not an array (``None``, a scalar, a list), of complex,
            integer, boolean, float16 or object dtype, or a torch meta tensor.
        ValueError
            For a product of the wrong shape.
        NonFiniteError
            For NaN or Inf entries; the message numbers the products (counted by this
            operator) and ``err.products`` holds ``(first, last)``, so an estimator can
            catch it and re-raise naming its own step (as :mod:`spectra.stochtrace` does).
        """
        if tuple(v.shape) != (self.shape[1],):
            raise ValueError(
                f"matvec expects a vector of shape ({self.shape[1]},), got {tuple(v.shape)}"
            )
        out = self._checked(self._matvec(v), (self.shape[0],), "matvec")
        self.num_matvecs += 1
        return out

    def matmat(self, V):
        """Return ``A V`` for a block ``V`` of shape ``(n, k)`` (checked as :meth:`matvec`)."""
        if V.ndim != 2 or V.shape[0] != self.shape[1]:
            raise ValueError(
                f"matmat expects a block of shape ({self.shape[1]}, k), got {tuple(V.shape)}"
            )
        out = self._checked(self._matmat(V), (self.shape[0], V.shape[1]), "matmat")
        self.num_matvecs += V.shape[1]
        return out

    def _checked(self, out: Any, shape: tuple, what: str):
        """The product ``out`` after the checks of :meth:`matvec` (cast if float32/64)."""
        torch_op = self.backend == "torch"
        want = "a torch.Tensor" if torch_op else "a numpy array"
        if not (is_torch(out) if torch_op else isinstance(out, np.ndarray)):
            got = "None" if out is None else type(out).__name__
            raise TypeError(f"the operator's {what} returned {got}; expected {want} of shape "
                            f"{shape} and dtype {dtype_name(self.dtype)}")
        if torch_op and out.is_meta:
            raise TypeError(f"the operator's {what} returned a torch meta tensor (no data); "
                            "run the product on a real device")
        if tuple(out.shape) != shape:
            raise ValueError(f"the operator's {what} returned shape {tuple(out.shape)}, "
                             f"expected {shape}")
        name = dtype_name(out.dtype)
        if name != dtype_name(self.dtype):
            if name not in ("float32", "float64"):
                kind = "complex values" if "complex" in name else f"dtype {name}"
                raise TypeError(
                    f"the operator's {what} returned {kind}; products must be real float32 "
                    f"or float64 (the operator's dtype is {dtype_name(self.dtype)}). "
                    "Return a real array, e.g. the real part when the imaginary one is zero"
                )
            out = out.to(self.dtype) if torch_op else out.astype(self.dtype)
        if not self._checks_finite and not math.isfinite(absmax(out)):
            first = self.num_matvecs + 1
            last = self.num_matvecs + (shape[1] if len(shape) == 2 else 1)
            span = f"product {first}" if first == last else f"products {first} to {last}"
            err = NonFiniteError(f"the operator's {what} returned NaN or Inf ({span} of this "
                                 "operator); check the operator")
            err.products = (first, last)  # for estimators that re-raise naming their step
            raise err
        return out

    def __matmul__(self, x):
        return self.matvec(x) if x.ndim == 1 else self.matmat(x)

    # ------------------------------------------------------------------ algebra
    __array_ufunc__ = None  # numpy scalars defer to the methods below

    def __add__(self, other):
        from .algebra import add

        return add(self, other, 1.0)

    def __sub__(self, other):
        from .algebra import add

        return add(self, other, -1.0)

    def __radd__(self, other):
        from .algebra import add

        return add(self, other, 1.0)

    def __rsub__(self, other):
        from .algebra import add, scale

        return add(scale(self, -1.0), other, 1.0)

    def __mul__(self, a):
        from .algebra import scale

        if hasattr(a, "shape") and getattr(a, "ndim", 0) > 0:
            raise TypeError("op * x is not a product; use op @ x (or op.matvec(x))")
        return scale(self, a)

    __rmul__ = __mul__

    def __truediv__(self, a):
        from ..validation import check_float
        from .algebra import scale

        a = check_float(a, "the divisor of an operator")
        if a == 0.0:
            raise ZeroDivisionError("division of an operator by zero")
        return scale(self, 1.0 / a)

    def __neg__(self):
        from .algebra import scale

        return scale(self, -1.0)

    def to_scipy(self):
        """Return the operator as a scipy :class:`~scipy.sparse.linalg.LinearOperator`.

        Same shape, the same products (counted in :attr:`num_matvecs`) and the operator's
        dtype (float32 or float64 numpy). Vectors are handed over as numpy arrays: for a
        torch operator they are moved to its device and dtype and the products come back
        to the host (zero-copy on the CPU). ``rmatvec`` (and ``.H``, ``.T``) exist when the
        operator is declared or known symmetric; they are then the same products.

        Returns
        -------
        scipy.sparse.linalg.LinearOperator

        Examples
        --------
        >>> import numpy as np, spectra
        >>> L = spectra.as_operator(np.diag([1.0, 2.0, 3.0])).to_scipy()
        >>> import scipy.sparse.linalg as sla
        >>> float(sla.eigsh(L, k=1, return_eigenvectors=False)[0])
        3.0
        """
        from scipy.sparse.linalg import LinearOperator

        np_dtype = np.dtype(dtype_name(self.dtype))

        def host(y):
            if is_torch(y):
                return y.detach().cpu().numpy()
            return np.asarray(y)

        def mv(x):
            x = np.asarray(x).reshape(-1)
            return host(self.matvec(from_numpy(np.asarray(x, dtype=np_dtype), like=self)))

        def mm(X):
            return host(self.matmat(from_numpy(np.asarray(X, dtype=np_dtype), like=self)))

        sym = self.symmetric is True
        return LinearOperator(self.shape, matvec=mv, matmat=mm, dtype=np_dtype,
                              rmatvec=mv if sym else None, rmatmat=mm if sym else None)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(shape={self.shape}, dtype={dtype_name(self.dtype)}, "
            f"device={self.device}, symmetric={self.symmetric}, psd={self.psd})"
        )

    # ------------------------------------------------------------------ structure
    def check_symmetric(self, rng: Any = None) -> bool:
        """Test symmetry with two random products and cache the verdict.

        Compares ``u^T (A v)`` with ``v^T (A u)`` for Gaussian ``u, v``; a symmetric
        operator agrees to the dtype's tolerance. Costs two products, which are
        counted in :attr:`num_matvecs` but in no estimator's budget.
        """
        if self.symmetric is not None:
            return bool(self.symmetric)
        from ..probes import as_rng, draw

        n = self.shape[0]
        g = as_rng(rng if rng is not None else 0x5EED)
        UV = draw("gaussian", n, 2, like=self, rng=g)  # in the operator's dtype and device
        AUV = self.matmat(UV)  # checked: finite, real, of the right shape
        top = absmax(AUV)
        if top > 0.0:  # an exact power of two keeps the squares below overflow
            AUV = AUV * (1.0 / power_of_two(top))
        a = coldots(UV[:, 0], AUV[:, 1])
        b = coldots(UV[:, 1], AUV[:, 0])
        nu, nv = np.sqrt(coldots(UV, UV))
        nau, nav = np.sqrt(coldots(AUV, AUV))
        scale = nu * nav + nv * nau
        self.symmetric = bool(abs(a - b) <= tolerance(self.dtype)["sym"] * max(scale, 1e-300))
        return self.symmetric

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_matvec(
        cls,
        matvec: Callable,
        shape: tuple[int, int],
        *,
        dtype: Any,
        device: Any = None,
        symmetric: bool | None = None,
        psd: bool = False,
        matmat: Callable | None = None,
    ) -> Operator:
        """Wrap a matvec callable.

        Parameters
        ----------
        matvec : callable
            ``v -> A v`` on numpy arrays, or on torch tensors when ``dtype`` is a torch
            dtype.
        shape : tuple of int
            ``(m, n)``.
        dtype : numpy or torch dtype
            float32 or float64.
        device : optional
            Device of the torch vectors (default ``"cpu"``).
        symmetric : bool or None
            ``None`` (default) lets methods that need symmetry test it once at random.
        psd : bool
            Declared positive semi-definiteness.
        matmat : callable, optional
            ``V -> A V`` for blocks, when faster than a loop of matvecs.

        Returns
        -------
        Operator
        """
        if not callable(matvec):
            raise TypeError(f"matvec must be callable, got {type(matvec).__name__}")
        backend = "torch" if hasattr(dtype, "is_floating_point") else "numpy"
        return _CallableOperator(
            matvec, matmat, shape, dtype, device=device or "cpu", symmetric=symmetric,
            psd=psd, backend=backend,
        )


class _CallableOperator(Operator):
    def __init__(self, matvec, matmat, shape, dtype, **kw):
        super().__init__(shape, dtype, **kw)
        self._fn = matvec
        self._fn_block = matmat

    def _matvec(self, v):
        return self._fn(v)

    def _matmat(self, V):
        if self._fn_block is not None:
            return self._fn_block(V)
        return super()._matmat(V)


class _ArrayOperator(Operator):
    """A dense numpy array or torch tensor, or a scipy sparse matrix."""

    def __init__(self, A, **kw):
        super().__init__(A.shape, A.dtype, **kw)
        self.A = A

    def _matvec(self, v):
        return self.A @ v

    def _matmat(self, V):
        return self.A @ V


class _LinearOperatorWrapper(Operator):
    """A scipy ``LinearOperator``."""

    def __init__(self, A, **kw):
        super().__init__(A.shape, A.dtype, **kw)
        self.A = A

    def _matvec(self, v):
        return np.asarray(self.A.matvec(v)).reshape(-1)

    def _matmat(self, V):
        return np.asarray(self.A.matmat(V))


def as_operator(A: Any, *, symmetric: bool | None = None, psd: bool | None = None) -> Operator:
    """Wrap a matrix-like object as an :class:`Operator`.

    Parameters
    ----------
    A : ndarray, scipy sparse matrix or array, scipy LinearOperator, torch.Tensor or Operator
        The matrix. Dense and sparse inputs must be finite, 2-d, non-empty and real
        float32/float64. Torch tensors may be dense or sparse (COO, CSR, CSC); meta
        tensors (no data) are refused.
    symmetric : bool or None
        Declared symmetry. ``None`` checks it exactly for explicit matrices (an
        ``O(nnz)`` comparison with the transpose) and leaves it to a randomised test
        for implicit ones.
    psd : bool or None
        Declared positive semi-definiteness (not verified).

    Returns
    -------
    Operator

    Raises
    ------
    TypeError
        For an unsupported type or dtype (integer, complex, float16), a torch meta tensor
        or sparse layout other than COO/CSR/CSC, or flags that are not ``True``,
        ``False`` or ``None``.
    ValueError
        For non-2-d, empty or non-finite input, or ``symmetric=True`` on a non-square
        matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from spectra import as_operator
    >>> op = as_operator(np.diag([1.0, 2.0, 3.0]))
    >>> op.shape, op.symmetric
    ((3, 3), True)
    """
    symmetric = check_optional_bool(symmetric, "symmetric")
    psd = check_optional_bool(psd, "psd")
    if isinstance(A, Operator):
        if symmetric is None and psd is None:
            return A
        out = copy.copy(A)
        if symmetric is not None:
            if symmetric and A.shape[0] != A.shape[1]:
                raise ValueError(f"a symmetric operator must be square, got shape {A.shape}")
            out.symmetric = bool(symmetric)
        if psd is not None:
            out.psd = bool(psd)
        return out
    if callable(A) and not hasattr(A, "shape"):
        raise TypeError(
            "a bare callable has no shape; use Operator.from_matvec(f, shape, dtype=...)"
        )
    if is_linear_operator(A):
        _check_dtype(A.dtype, "the LinearOperator")
        return _LinearOperatorWrapper(A, symmetric=symmetric, psd=bool(psd))
    if is_torch(A):
        A = check_torch_tensor(A)
    if is_torch(A) or isinstance(A, np.ndarray) or is_sparse(A):
        if A.ndim != 2:
            raise ValueError(f"a matrix must be 2-d, got {A.ndim}-d with shape {tuple(A.shape)}")
        if min(A.shape) == 0:
            raise ValueError(f"the matrix is empty (shape {tuple(A.shape)})")
        _check_dtype(A.dtype, "the matrix")
        check_finite_entries(A)
        if is_sparse(A):
            A = A.tocsr()
        if symmetric is None:
            symmetric = exact_symmetry(A, A.dtype)
        elif symmetric and A.shape[0] != A.shape[1]:
            raise ValueError(f"symmetric=True needs a square matrix, got shape {tuple(A.shape)}")
        backend = "torch" if is_torch(A) else "numpy"
        device = A.device if is_torch(A) else "cpu"
        return _ArrayOperator(A, symmetric=symmetric, psd=bool(psd), backend=backend, device=device)
    raise TypeError(
        f"cannot make an operator from {type(A).__name__}; allowed: numpy array, scipy sparse "
        "matrix, scipy LinearOperator, torch tensor, Operator (or Operator.from_matvec)"
    )


def require_square(op: Operator, method: str) -> None:
    """Raise ``ValueError`` unless ``op`` is square."""
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"{method} needs a square operator, got shape {op.shape}")


def require_symmetric(op: Operator, method: str, rng: Any = None) -> None:
    """Raise ``ValueError`` unless ``op`` is square and symmetric (tested if undeclared)."""
    require_square(op, method)
    if not op.check_symmetric(rng):
        raise ValueError(
            f"{method} needs a symmetric operator, but this one is not symmetric "
            "(declared, or found by a randomised test u^T A v != v^T A u). "
            "Symmetrise it, e.g. (A + A.T) / 2, or declare symmetric=True if the test is wrong."
        )


def wrapped_matrix(A: Any) -> Any:
    """Return the matrix behind an operator made by :func:`as_operator`, else ``A`` itself.

    The array, sparse matrix (as CSR), tensor or scipy ``LinearOperator`` that
    :func:`as_operator` wrapped is returned as stored; any other object (a matrix, an
    :meth:`Operator.from_matvec` operator, a subclass) comes back unchanged. Solvers that
    can use an explicit matrix (a sparse LU, a dense solve) reach it through this.
    """
    return A.A if isinstance(A, (_ArrayOperator, _LinearOperatorWrapper)) else A


def dense_matrix(op: Operator, block: int = 256) -> np.ndarray:
    """Form the matrix of ``op`` from products with identity blocks.

    Parameters
    ----------
    op : Operator
        Any operator; costs ``n`` products (``shape[1]``), ``block`` columns per
        :meth:`Operator.matmat`, each block built in the operator's dtype and device.
    block : int
        Columns per product.

    Returns
    -------
    ndarray, shape ``(m, n)``
        On the host, float64.

    Raises
    ------
    NonFiniteError
        When a product returns NaN or Inf.
    """
    n = op.shape[1]
    cols = []
    for s in range(0, n, block):
        E = np.zeros((n, min(block, n - s)))
        E[np.arange(s, s + E.shape[1]), np.arange(E.shape[1])] = 1.0
        cols.append(to_numpy(op.matmat(from_numpy(E, like=op))))
    A = np.concatenate(cols, axis=1)
    if not np.all(np.isfinite(A)):
        raise NonFiniteError("the operator's product returned NaN or Inf while forming it")
    return A
