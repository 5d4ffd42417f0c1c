r"""What block estimates add to a result: their errors, wider bands, and the map to ``P``.

:func:`annotate` adds the block estimates of a :class:`~freedecomp.blocks.BlockSample`
to a decompression: ``diagnostics.block_estimates`` (per block: method, products,
quadrature and probe errors) and, when blocks were estimated by SLQ, their error carried
into the result (``diagnostics.slq_error`` and the ``bands``).

The carried error is a horizontal one. The SLQ estimate of a block's law is within
:math:`\delta = e_q + e_p` of the block's exact law in Wasserstein-1
(:mod:`freedecomp.blocks`: the quadrature bound :math:`e_q` averaged over the blocks, a
bias shared by all of them, plus the probe spread :math:`e_p` of the average of ``B``
blocks, :math:`\sqrt{\overline{e_p^2}/B}`). Free decompression maps a block's law to
``N`` along its characteristics; the map is carried out in units of the law's own
spread, so the error is carried as the same fraction of the standard deviation,
:math:`\delta_N = \delta\, \mathrm{sd}_N / \mathrm{sd}_n`. A W1 error
:math:`\delta_N` is what moving every eigenvalue by up to :math:`\delta_N` can do, so
the bands are widened to the envelope of the densities shifted by
:math:`|t| \le \delta_N`: the sliding minimum of the lower band and the sliding maximum
of the upper band (or of the density itself when the result had no bands) over a window
of half-width :math:`\delta_N`. Exact blocks (dense, or deflated outliers) add nothing;
noisier blocks give wider bands (:doc:`/theory/free_decompression`).

:func:`embed` maps a decompressed law to a larger space by a scale and an atom at zero
(the data-space to parameter-space map of :mod:`hessian.curvature.subsample`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .result import Decompression

__all__ = ["annotate", "embed", "slq_shift"]

#: Relative SLQ error (W1 over the block's sd) above which a warning is emitted.
ERROR_WARN = 0.05


def slq_shift(spectra: list, size_sd: float) -> float:
    """The W1 error ``delta_N`` of a result at ``N`` carried from SLQ block estimates.

    Parameters
    ----------
    spectra : list of BlockSpectrum
        The block estimates (dense ones have error 0; an unknown probe error counts
        as 0, an unknown quadrature error makes the result ``nan``).
    size_sd : float
        Standard deviation of the result's law at ``N``.

    Returns
    -------
    float
        ``(mean quadrature error + sqrt(mean probe error^2 / B)) * size_sd / sd_n``, with
        ``sd_n`` the pooled blocks' standard deviation (module docstring).
    """
    quad = float(np.mean([s.quadrature_error for s in spectra]))
    probes = np.array([s.probe_error for s in spectra], float)
    probes = probes[np.isfinite(probes)]
    probe = float(np.sqrt(np.mean(probes**2) / len(spectra))) if probes.size else 0.0
    sd_n = float(np.concatenate([s.eigs for s in spectra]).std())
    if not sd_n > 0:
        return 0.0
    return (quad + probe) * float(size_sd) / sd_n


def _widen(x: np.ndarray, rho: np.ndarray, bands: np.ndarray | None, shift: float
           ) -> np.ndarray | None:
    """Bands widened to the envelope of the density shifted by at most ``shift``."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    if not (np.isfinite(shift) and shift > 0) or x.size < 2:
        return bands
    h = float(x[-1] - x[0]) / (x.size - 1)
    w = int(np.ceil(shift / h))
    lo, hi = (rho, rho) if bands is None else (bands[0], bands[1])
    size = 2 * w + 1
    return np.stack([minimum_filter1d(lo, size, mode="nearest"),
                     maximum_filter1d(hi, size, mode="nearest")])


def annotate(result: Decompression, smp: Any) -> Decompression:
    """Add the block estimates, their error and a warning when they are loose to ``result``.

    ``diagnostics.block_estimates`` lists, per block, the method, products and W1
    error estimates (absolute and in the block's sd). When a block was estimated by SLQ,
    ``diagnostics.slq_error`` is the carried error :func:`slq_shift` (in the result's
    units) and the bands are widened by it (module docstring). An SLQ error above
    :data:`ERROR_WARN` sd adds a warning to ``diagnostics.warnings`` (which
    :func:`~freedecomp.decompress` emits as a
    :class:`~freedecomp.result.FreeDecompressionWarning`). Samples without block
    estimates (``smp.spectra``) come back unchanged.
    """
    specs = getattr(smp, "spectra", None)
    if not specs:
        return result
    rows = tuple({"method": s.method, "num_matvecs": s.num_matvecs, "outliers": s.outliers.size,
                  "quadrature_error": s.quadrature_error, "probe_error": s.probe_error,
                  "relative_error": s.relative_error} for s in specs)
    worst = max((r["relative_error"] for r in rows
                 if r["method"] != "dense" and np.isfinite(r["relative_error"])), default=0.0)
    msgs = list(result.diagnostics.warnings)
    if worst > ERROR_WARN:
        msgs.append(f"the block spectra estimated by SLQ carry a W1 error of up to {worst:.3f} "
                    "sd (quadrature plus probe spread); lower rtol, raise "
                    "num_steps/num_probes or use smaller (dense) blocks")
    if all(s.method == "dense" for s in specs):
        diag = replace(result.diagnostics, block_estimates=rows, warnings=tuple(msgs))
        return replace(result, diagnostics=diag)
    den = result.density
    mu = float(np.sum(den.weights * den.nodes))
    shift = slq_shift(specs, float(np.sqrt(np.sum(den.weights * (den.nodes - mu) ** 2))))
    diag = replace(result.diagnostics, block_estimates=rows, warnings=tuple(msgs),
                   slq_error=shift)
    return replace(result, diagnostics=diag,
                   bands=_widen(result.x, result.rho, result.bands, shift))


def embed(result: Decompression, *, scale: float, size: int, rank: float | None = None,
          note: str | None = None) -> Decompression:
    r"""The law of ``result`` pushed by :math:`x \mapsto x\,\text{scale}` into ``size`` dims.

    A matrix :math:`A` of size ``N = result.size`` and ``B`` of size ``size`` that share
    their nonzero eigenvalues up to ``scale`` (``B = J^T J`` and ``A = J J^T``): the
    nonzero part of ``result`` (mass ``rank / N``, ``rank`` defaulting to ``N`` times the
    mass off any atom at zero) is scaled to mass ``rank / size`` and the rest of ``B``'s
    law is an atom at zero of mass ``1 - rank / size``.

    Raises
    ------
    ValueError
        When ``rank`` exceeds ``size`` or ``N``.
    """
    N = result.size
    tiny = 1e-12 * max(float(np.abs(result.x).max()), 1e-300)
    zero = sum(m for a, m in result.atoms if abs(a) <= tiny)
    r = N * (1.0 - zero) if rank is None else float(rank)
    r = min(r, float(size))
    if r > N + 1e-9:
        raise ValueError(f"rank {r:g} exceeds the size {N} of the decompressed matrix")
    f = (r / size) / max(1.0 - zero, 1e-300)  # mass factor of the nonzero part
    atoms = [(a * scale, m * f) for a, m in result.atoms if abs(a) > tiny]
    if size > r:
        atoms.append((0.0, 1.0 - r / size))
    x = result.x * scale
    rho = result.rho * f / scale
    bands = None if result.bands is None else result.bands * f / scale
    edges = [(a * scale, b * scale) for a, b in result.edges]
    errs = [(a * scale, b * scale) for a, b in result.edge_errors]
    msgs = tuple(result.diagnostics.warnings) + ((note,) if note else ())
    slq = result.diagnostics.slq_error
    diag = replace(result.diagnostics, warnings=msgs,
                   slq_error=None if slq is None else slq * abs(scale))
    outliers = tuple(replace(o, location=o.location * scale, error=o.error * scale,
                             block_location=o.block_location * scale)
                     for o in getattr(result, "outliers", ()))
    return Decompression(x=x, rho=rho, size=int(size), sample_size=result.sample_size,
                         atoms=atoms, edges=edges, edge_errors=errs, bands=bands,
                         diagnostics=diag, outliers=outliers)
