"""Progress bars of the command line: a tqdm bar on standard error, only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import spectra

__all__ = ["bar_wanted", "progress_operator"]


def bar_wanted(quiet: bool) -> bool:
    """Whether to show progress bars: not ``--quiet`` and standard error is a terminal."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_operator(op: Any, total: int | None, desc: str, enabled: bool) -> Iterator[Any]:
    """Yield ``op``, or a wrapper that advances a tqdm bar on stderr with every product."""
    if not enabled:
        yield op
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="vec", file=sys.stderr, leave=False, delay=0.5)

    def block(V: Any) -> Any:
        out = op.matmat(V)
        bar.update(V.shape[1])
        return out

    wrapped = spectra.Operator.from_matvec(lambda v: block(v[:, None])[:, 0], op.shape,
                                           dtype=op.dtype, device=op.device,
                                           symmetric=op.symmetric, psd=op.psd, matmat=block)
    try:
        yield wrapped
    finally:
        bar.close()
