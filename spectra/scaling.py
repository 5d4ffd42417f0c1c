r"""Exact power-of-two rescaling of an operator for runs at extreme scales.

Dividing ``A`` by a power of two is exact in floating point. The SLQ and KPM drivers use
it so that ``c * A`` gives ``c`` times the results of ``A`` wherever the entries of
``c * A`` are normal numbers (:doc:`/theory/slq_brackets`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import power_of_two, to_numpy
from .operators import Operator
from .results import NonFiniteError

__all__ = ["SAFE_SCALE", "power_of_two_scale", "safe_scale_run", "scaled_operator"]


def power_of_two_scale(op: Operator, V: Any) -> float:
    """The power of two ``2^e`` with ``2^(e-1) <= max |A v| < 2^e``, ``v = V[:, 0]``.

    Dividing by it is exact in floating point and brings the operator to unit scale, so
    that the Lanczos norms and breakdown tests neither underflow nor overflow for
    ``c * A`` anywhere in the range where its entries are normal numbers. Costs one
    product; ``1.0`` for a product that is zero.
    """
    w = op.matmat(V[:, :1])
    m = float(to_numpy(op.xp.max(op.xp.abs(w))))
    if not np.isfinite(m):
        raise NonFiniteError("the operator's product returned NaN or Inf (scale probe)")
    return power_of_two(m)


def scaled_operator(op: Operator, scale: float) -> Operator:
    """``A / scale`` as an operator (the same object for ``scale == 1``)."""
    if scale == 1.0:
        return op
    inv = 1.0 / scale

    def matmat(V: Any) -> Any:
        return op.matmat(V) * inv

    return Operator.from_matvec(lambda v: matmat(v[:, None])[:, 0], op.shape, dtype=op.dtype,
                                device=op.device, symmetric=True, psd=op.psd, matmat=matmat)


#: Magnitudes of the Lanczos coefficients inside which a run needs no rescaling: their
#: squares, and sums of ``n`` squares of vector entries, stay normal numbers.
SAFE_SCALE = (2.0**-450, 2.0**450)


def safe_scale_run(op: Operator, Z: Any, run: Callable[[Operator], Any],
                   magnitude: Callable[[Any], float]) -> tuple[Any, float, int]:
    """Run ``run(op)``; again on ``A / 2^e`` when the scale of ``A`` is extreme.

    ``magnitude(result)`` gives the scale of a result (the largest Lanczos coefficient or
    Ritz value). Inside :data:`SAFE_SCALE` the first result stands, at no extra cost.
    Outside it, or when the first run overflows (:class:`NonFiniteError`), the run is
    repeated on ``A`` divided by the power of two at that magnitude (or at one product,
    :func:`power_of_two_scale`), exactly, so that ``c * A`` gives ``c`` times the result
    of ``A`` wherever the entries of ``c * A`` are normal numbers.

    Returns
    -------
    result, scale, products spent on the discarded attempt and the scale probe
    """
    before = op.num_matvecs
    try:
        # an extreme scale may overflow squares on the way; the magnitude check decides
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            out = run(op)
            m = float(magnitude(out))
    except NonFiniteError:
        m = float("nan")
    if SAFE_SCALE[0] <= m <= SAFE_SCALE[1]:
        return out, 1.0, 0
    if m > 0 and np.isfinite(m):
        s = power_of_two(m)
    else:
        s = power_of_two_scale(op, Z)
    spent = op.num_matvecs - before
    return run(scaled_operator(op, s)), s, spent
