"""Argument validation shared by every package: one checker per kind of argument.

Each checker returns the value in its canonical Python type or raises an error that
names the argument, what it got and what is allowed: :class:`TypeError` for a value of
the wrong kind (a string, a float where an integer is needed, a non-bool flag),
:class:`ValueError` for a value of the right kind out of its range.

>>> from spectra.validation import check_int
>>> check_int(3, "k", low=1)
3
>>> check_int(2.5, "k", low=1)
Traceback (most recent call last):
...
TypeError: k must be an integer >= 1, got 2.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["InsufficientMemoryError", "available_memory", "check_bool", "check_choice",
           "check_float", "check_int", "check_optional_bool", "check_shape", "int_range_text",
           "require_memory"]


def int_range_text(low: int | None, high: int | None) -> str:
    """Describe an integer range in words (``">= 1"``, ``"in [1, 10]"``, ``"<= 5"``)."""
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    if low is not None:
        return f">= {low}"
    if high is not None:
        return f"<= {high}"
    return "(any value)"


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              hint: str = "") -> int:
    """Return ``value`` as an ``int`` in ``[low, high]``.

    Parameters
    ----------
    value : Any
        The argument. Python and numpy integers are accepted; ``bool``, floats
        (even integral ones such as ``3.0``), strings and everything else are refused.
    name : str
        Name of the argument in the message.
    low, high : int, optional
        Inclusive bounds.
    hint : str
        Appended to the range error (e.g. ``" (n = 50)"``).

    Returns
    -------
    int

    Raises
    ------
    TypeError
        When ``value`` is not an integer.
    ValueError
        When it lies outside ``[low, high]``.
    """
    allowed = f"an integer {int_range_text(low, high)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer)):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be {allowed}, got {v}{hint}")
    return v


def check_float(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, finite: bool = True,
                hint: str = "") -> float:
    """Return ``value`` as a ``float`` in a (half-)open or closed interval.

    Parameters
    ----------
    value : Any
        A real number (Python, numpy, or a 0-d array). ``bool`` and strings are refused.
    name : str
        Name of the argument in the message.
    low, high : float, optional
        Bounds of the allowed interval.
    low_open, high_open : bool
        Whether the bounds themselves are excluded.
    finite : bool
        Refuse NaN and +-Inf (default). NaN is refused in every case.
    hint : str
        Appended to the range error.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        When ``value`` is not a real number.
    ValueError
        When it is NaN, infinite (with ``finite=True``) or out of range.
    """
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        allowed = f"a real number in {lo}, {hi}"
    elif low is not None:
        allowed = f"a real number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        allowed = f"a real number {'<' if high_open else '<='} {high:g}"
    else:
        allowed = "a finite real number" if finite else "a real number"
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating,
                                                                     np.integer)):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name} must be {allowed}, got {v}{hint}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        raise ValueError(f"{name} must be {allowed}, got {v:g}{hint}")
    return v


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is a ``bool`` (or ``numpy.bool_``), else raise ``TypeError``.

    Strings such as ``"yes"``, numbers such as ``1`` or ``2.5`` and ``None`` are refused:
    a flag is ``True`` or ``False``.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_choice(value: Any, name: str, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them.

    A value of another type than the choices (e.g. a number where names are expected)
    raises ``TypeError``.
    """
    allowed = tuple(allowed)
    listing = ", ".join(repr(a) for a in allowed)
    types = {type(a) for a in allowed}
    if types and not isinstance(value, tuple(types)):
        raise TypeError(f"{name} must be one of {listing}, got {value!r}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {listing}, got {value!r}")
    return value


def check_optional_bool(value: Any, name: str) -> bool | None:
    """Return ``value`` if it is ``None`` or a bool (a flag that may be left unknown)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True, False or None, got {value!r}")


def check_shape(value: Any, name: str = "shape", ndim: int = 2) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ``ndim`` positive Python ints.

    Python and numpy integers are accepted; floats (even ``3.0``), bools, strings and
    scalars are refused with :class:`TypeError`, zero or negative sizes with
    :class:`ValueError`.
    """
    allowed = f"a tuple of {ndim} positive integers"
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    items = tuple(value)
    if len(items) != ndim:
        raise ValueError(f"{name} must be {allowed}, got {items!r} ({len(items)} entries)")
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (Integral, np.integer))
           for s in items):
        raise TypeError(f"{name} must be {allowed}, got {items!r}")
    out = tuple(int(s) for s in items)
    if min(out) < 1:
        raise ValueError(f"{name} must be {allowed} (non-empty), got {out}")
    return out


class InsufficientMemoryError(ValueError, MemoryError):
    """A computation would need more memory than the machine has; raised before allocating.

    Subclasses both :class:`ValueError` (the arguments ask for too much) and
    :class:`MemoryError`, so handlers written for either catch it.
    """


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes that can be allocated now: free device memory on CUDA, else ``MemAvailable``.

    Returns ``None`` when it cannot be found out (then no check is made).
    """
    dev = str(device)
    if dev.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(dev))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


#: Allocations below this many bytes are not checked (:func:`require_memory`): reading
#: ``/proc/meminfo`` took 0.05-0.45 ms here, more than a small eigsh run's products.
_SMALL_ALLOCATION = 2**20


def require_memory(nbytes: float, what: str, device: Any = "cpu") -> None:
    """Raise :class:`InsufficientMemoryError` if ``nbytes`` cannot be allocated on ``device``.

    Parameters
    ----------
    nbytes : float
        Bytes the computation is about to allocate (e.g. ``vectors * n * itemsize``).
    what : str
        What needs them, named in the message (``"xtrace: 4 x 10 vectors of length n"``).
    device : str or torch.device
        ``"cpu"`` (host memory, from ``/proc/meminfo``) or a CUDA device (free memory).
    """
    if nbytes < _SMALL_ALLOCATION:
        return  # reading the free memory costs more than the allocation it guards
    free = available_memory(device)
    if free is not None and nbytes > free:
        raise InsufficientMemoryError(
            f"{what} needs {_human(nbytes)} of memory on {device}, but only {_human(free)} "
            "is available; lower the budget, the block size or the dimension"
        )
