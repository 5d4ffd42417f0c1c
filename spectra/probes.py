"""Random probe vectors drawn from an explicit random generator.

Randomness is always an argument: ``rng`` may be ``None`` (fresh OS entropy), an
integer seed, a :class:`numpy.random.Generator`, or a ``torch.Generator``. With a
numpy generator the probes are drawn on the host and moved to the operator's
device once per block, so numpy and torch operators see the same probes for the
same seed; with a torch generator they are drawn on its device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import from_numpy
from .validation import check_choice

__all__ = ["PROBES", "as_rng", "draw"]

PROBES = ("rademacher", "gaussian", "sphere")


def as_rng(rng: Any) -> Any:
    """Normalise ``rng`` to a numpy ``Generator`` (or pass a ``torch.Generator`` through).

    Parameters
    ----------
    rng : None, int, numpy.random.Generator or torch.Generator

    Returns
    -------
    numpy.random.Generator or torch.Generator
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    if type(rng).__name__ == "Generator" and type(rng).__module__.startswith("torch"):
        return rng
    raise TypeError(
        f"rng must be None, an int seed, a numpy Generator or a torch Generator, "
        f"got {type(rng).__name__}"
    )


def draw(kind: str, n: int, k: int, *, like: Any, rng: Any) -> Any:
    """Draw an ``(n, k)`` block of isotropic probes (``E[z z^T] = I``).

    Parameters
    ----------
    kind : {"rademacher", "gaussian", "sphere"}
        Entries ``+-1``; standard normal; uniform on the sphere of radius ``sqrt(n)``.
    n, k : int
        Block shape.
    like : Operator or array
        Gives namespace, dtype and device.
    rng : numpy or torch generator (see :func:`as_rng`)

    Returns
    -------
    array of shape ``(n, k)``
    """
    check_choice(kind, "probe", PROBES)
    g = as_rng(rng)
    if isinstance(g, np.random.Generator):
        if kind == "rademacher":
            Z = (2.0 * g.integers(0, 2, size=(n, k)) - 1.0)
        else:
            Z = g.standard_normal((n, k))
            if kind == "sphere":
                Z *= np.sqrt(n) / np.linalg.norm(Z, axis=0)
        return from_numpy(Z, like=like)
    import torch

    dtype = like.dtype
    dev = getattr(like, "device", None)
    if kind == "rademacher":
        Z = torch.randint(0, 2, (n, k), generator=g, device=g.device).to(dtype) * 2 - 1
    else:
        Z = torch.randn((n, k), generator=g, device=g.device, dtype=dtype)
        if kind == "sphere":
            Z = Z * (n**0.5 / torch.linalg.vector_norm(Z, dim=0))
    return Z.to(dev)
