r"""Records and histories of curvature spectra, and their JSON-lines file format.

The data side of :mod:`hessian.monitor`; :class:`SpectrumRecord` and
:class:`SpectrumHistory` are public there (and in :mod:`hessian`).

Records
-------
A :class:`SpectrumRecord` keeps, besides the top eigenvalues and the trace, the raw
stochastic Lanczos quadrature (SLQ) measure of the spectral density: Ritz values
:math:`\theta_j`, weights :math:`w_j` (summing to one over all probes) and per-node
display widths :math:`\sigma_j`, so that the smoothed density

.. math::

    \rho(x) = \sum_j w_j\, \phi_{\sigma_j}(x - \theta_j), \qquad
    \phi_\sigma(t) = \frac{1}{\sigma \sqrt{2\pi}} e^{-t^2 / (2\sigma^2)},

can be evaluated on any grid afterwards.

Common grid
-----------
A :class:`SpectrumHistory` puts all records on one grid :math:`x_1 < \dots < x_G`
(by default 400 points spanning every record's nodes padded by :math:`3\sigma_j`), and
stores cell averages rather than point values: with cells :math:`[a_i, b_i]` ending
halfway between grid points (the outer ones half a spacing beyond the ends),

.. math::

    \bar\rho_i = \frac{1}{b_i - a_i} \sum_j w_j \left(
    \Phi\!\left(\frac{b_i - \theta_j}{\sigma_j}\right)
    - \Phi\!\left(\frac{a_i - \theta_j}{\sigma_j}\right)\right),

:math:`\Phi` the standard normal distribution function.  A peak narrower than a cell
(the spike of near-zero eigenvalues of a network's Hessian) keeps its mass
:math:`\sum_i \bar\rho_i (b_i - a_i)`, so a heat map shows every peak.

File format
-----------
UTF-8 JSON lines (``spectrum_history.jsonl`` when a directory is given).  Line 1 is the
header ``{"format": "impalpable.spectrum-history", "version": 1, "config": {...}}``
(the monitor's settings); every further line is one record, the fields of
:meth:`SpectrumRecord.to_dict`.  Floats are written with Python's shortest round-trip
``repr``, so a history read back equals the one written bit for bit.  Appending
(:func:`_append_line`) writes a whole line with one ``write``, then flushes and
``fsync``'s; :meth:`SpectrumHistory.save` writes a temporary file and renames it.  On
reading (:func:`_read`) a line that does not parse is tolerated only at the end of the
file (a write cut short by a crash): it is dropped with a warning.

References
----------
.. [1] S. Ubaru, J. Chen, Y. Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
   quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.
.. [2] L. Lin, Y. Saad, C. Yang, "Approximating spectral densities of large matrices",
   SIAM Rev. 58(1), 2016.
.. [3] B. Ghorbani, S. Krishnan, Y. Xiao, "An investigation into neural net
   optimization via Hessian eigenvalue density", ICML 2019.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from spectra.densities import smooth
from spectra.results import SpectralDensity

FORMAT = "impalpable.spectrum-history"
VERSION = 1
FILENAME = "spectrum_history.jsonl"
_DEFAULT_GRID = 400


# ====================================================================== records
@dataclass(frozen=True, eq=False)
class SpectrumRecord:
    r"""One measurement of a curvature spectrum at one training step.

    Attributes
    ----------
    step : int
        Training step.
    kind : str
        ``"hessian"``, ``"ggn"``, ``"fisher"``, ``"jtj"`` or ``"ntk"``.
    eigenvalues : ndarray, shape ``(k,)``
        Top eigenvalues, ordered as :func:`spectra.eigsh` orders ``which``.
    residual_norms : ndarray, shape ``(k,)``
        :math:`\|Hx - \theta x\|` of each pair.
    converged : bool
        Whether Lanczos met its tolerance.
    trace, trace_stderr : float
        Trace estimate and its standard error.
    nodes, weights, widths : ndarray
        The SLQ measure (Ritz values; weights summing to one) and each node's Gaussian
        display width.
    loss : float or None
        Loss on the probe batch (``None`` for ``"jtj"`` and ``"ntk"``).
    eig_matvecs, trace_matvecs, density_matvecs : int
        Products used by each estimate.
    warm_start : bool
        Whether Lanczos started from the previous record's eigenvector.
    seconds : float
        Wall-clock time of the record.
    """

    step: int
    kind: str
    eigenvalues: np.ndarray
    residual_norms: np.ndarray
    converged: bool
    trace: float
    trace_stderr: float
    nodes: np.ndarray
    weights: np.ndarray
    widths: np.ndarray
    loss: float | None
    eig_matvecs: int
    trace_matvecs: int
    density_matvecs: int
    warm_start: bool
    seconds: float

    @property
    def num_matvecs(self) -> int:
        """Products used by the record (all three estimates)."""
        return self.eig_matvecs + self.trace_matvecs + self.density_matvecs

    def density(self, grid: Any) -> np.ndarray:
        r"""Smoothed density :math:`\sum_j w_j \phi_{\sigma_j}(x - \theta_j)` on ``grid``."""
        x = np.asarray(grid, dtype=float)
        return smooth(self.nodes, self.weights, x, self.widths)

    def spectral_density(self, grid: Any = None) -> SpectralDensity:
        """The record's density as a :class:`spectra.SpectralDensity` (for plotting).

        Parameters
        ----------
        grid : array_like, optional
            Evaluation points (default: 1024 points over the nodes, padded by five widths).
        """
        if grid is None:
            pad = 5.0 * float(np.max(self.widths))
            grid = np.linspace(self.nodes.min() - pad, self.nodes.max() + pad, 1024)
        x = np.asarray(grid, dtype=float)
        return SpectralDensity(x, self.density(x), self.nodes, self.weights,
                               (float(self.nodes.min()), float(self.nodes.max())),
                               self.density_matvecs, "slq", float(np.median(self.widths)))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats round-trip exactly through :mod:`json`)."""
        out = {}
        for name in _RECORD_FIELDS:
            v = getattr(self, name)
            out[name] = v.tolist() if isinstance(v, np.ndarray) else v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> SpectrumRecord:
        """Inverse of :meth:`to_dict`; refuses a dict with missing fields."""
        if not isinstance(d, dict):
            raise ValueError(f"a record must be a JSON object, got {type(d).__name__}")
        missing = [n for n in _RECORD_FIELDS if n not in d]
        if missing:
            raise ValueError(f"record is missing the field(s) {missing}")
        kw = {n: d[n] for n in _RECORD_FIELDS}
        for n in _ARRAY_FIELDS:
            kw[n] = np.asarray(kw[n], dtype=float)
        for n in ("step", "eig_matvecs", "trace_matvecs", "density_matvecs"):
            kw[n] = int(kw[n])
        for n in ("trace", "trace_stderr", "seconds"):
            kw[n] = float(kw[n])
        kw["loss"] = None if kw["loss"] is None else float(kw["loss"])
        kw["converged"], kw["warm_start"] = bool(kw["converged"]), bool(kw["warm_start"])
        return cls(**kw)


_RECORD_FIELDS = tuple(SpectrumRecord.__dataclass_fields__)
_ARRAY_FIELDS = ("eigenvalues", "residual_norms", "nodes", "weights", "widths")


# ====================================================================== history
@dataclass(frozen=True, eq=False)
class SpectrumHistory:
    """Records of one curvature kind over training, with densities on a common grid.

    Parameters
    ----------
    records : sequence of SpectrumRecord
        One kind, strictly increasing steps, the same ``k``.
    grid : None, int or array_like
        Grid of :attr:`densities`: explicit increasing points, a point count, or
        ``None`` (400 points). A count spans all records' nodes, padded by three
        display widths.
    config : dict, optional
        The monitor's settings (kept in the file header).

    Attributes
    ----------
    kind : str
    steps : ndarray of int, shape ``(R,)``
    top_eigenvalues, residual_norms : ndarray, shape ``(R, k)``
    converged : ndarray of bool, shape ``(R,)``
    trace, trace_stderr, loss : ndarray, shape ``(R,)``
        ``loss`` is NaN for kinds without a loss.
    num_matvecs : ndarray of int, shape ``(R,)``
    densities : ndarray, shape ``(R, G)``
        Smoothed density of each record averaged over the cell of each grid point
        (cells end halfway between points), so that narrow peaks keep their mass:
        ``densities @ cell_widths`` is the mass on the grid (one, up to the tails
        outside a grid of the default span).
    """

    records: tuple
    grid: Any = None
    config: dict = field(default_factory=dict, repr=False)
    kind: str = field(init=False)
    steps: np.ndarray = field(init=False, repr=False)
    top_eigenvalues: np.ndarray = field(init=False, repr=False)
    residual_norms: np.ndarray = field(init=False, repr=False)
    converged: np.ndarray = field(init=False, repr=False)
    trace: np.ndarray = field(init=False, repr=False)
    trace_stderr: np.ndarray = field(init=False, repr=False)
    loss: np.ndarray = field(init=False, repr=False)
    num_matvecs: np.ndarray = field(init=False, repr=False)
    densities: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        recs = tuple(self.records)
        if not all(isinstance(r, SpectrumRecord) for r in recs):
            raise TypeError("records must be SpectrumRecord objects")
        kinds = sorted({r.kind for r in recs})
        if len(kinds) > 1:
            raise ValueError(f"a history holds one curvature kind, got {kinds}")
        steps = np.array([r.step for r in recs], dtype=np.int64)
        if np.any(np.diff(steps) <= 0):
            raise ValueError("record steps must be strictly increasing")
        ks = {r.eigenvalues.size for r in recs}
        if len(ks) > 1:
            raise ValueError(f"records disagree on the number of eigenvalues: {sorted(ks)}")
        k = ks.pop() if ks else int(self.config.get("k", 0) or 0)
        grid = _history_grid(recs, self.grid)
        put = object.__setattr__
        put(self, "records", recs)
        put(self, "grid", grid)
        put(self, "config", dict(self.config))
        put(self, "kind", kinds[0] if kinds else "")
        put(self, "steps", steps)
        put(self, "top_eigenvalues", _rows([r.eigenvalues for r in recs], k))
        put(self, "residual_norms", _rows([r.residual_norms for r in recs], k))
        put(self, "converged", np.array([r.converged for r in recs], dtype=bool))
        put(self, "trace", np.array([r.trace for r in recs], dtype=float))
        put(self, "trace_stderr", np.array([r.trace_stderr for r in recs], dtype=float))
        put(self, "loss", np.array([np.nan if r.loss is None else r.loss for r in recs],
                                   dtype=float))
        put(self, "num_matvecs", np.array([r.num_matvecs for r in recs], dtype=np.int64))
        dens = np.array([_cell_density(r, grid) for r in recs]).reshape(len(recs), grid.size)
        put(self, "densities", dens)

    def __len__(self) -> int:
        return len(self.records)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON lines (atomically: a temporary file, then a rename).

        Parameters
        ----------
        path : str or path-like
            A ``.jsonl`` file, or a directory (the file is then ``spectrum_history.jsonl``).

        Returns
        -------
        pathlib.Path
            The file written.
        """
        file = _history_file(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(file.name + ".tmp")
        lines = [_header(self.config)] + [r.to_dict() for r in self.records]
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, separators=(",", ":")) + "\n" for d in lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file)
        return file

    @classmethod
    def load(cls, path: str | os.PathLike, kind: str | None = None,
             grid: Any = None) -> SpectrumHistory:
        """Read a history written by :meth:`save` or by a :class:`SpectrumMonitor`.

        Parameters
        ----------
        path : str or path-like
            The ``.jsonl`` file or its directory.
        kind : str, optional
            Which curvature kind to read; required when the file holds several.
        grid : None, int or array_like
            As for the constructor.

        Returns
        -------
        SpectrumHistory

        Raises
        ------
        FileNotFoundError
            No history there.
        ValueError
            Not a history file, a malformed line before the last, or ``kind`` missing
            or ambiguous.
        """
        file = _history_file(path)
        if not file.exists():
            raise FileNotFoundError(f"no spectrum history at {file}")
        header, dicts, _ = _read(file)
        records = [SpectrumRecord.from_dict(d) for d in dicts]
        kinds = list(dict.fromkeys(r.kind for r in records))
        if kind is None:
            if len(kinds) > 1:
                raise ValueError(f"{file} holds the kinds {kinds}; pass kind=")
            kind = kinds[0] if kinds else None
        elif kind not in kinds:
            raise ValueError(f"{file} holds no {kind!r} records (kinds there: {kinds})")
        config = header.get("config", {}) if header else {}
        return cls(tuple(r for r in records if r.kind == kind), grid, config)


def _rows(rows: list, k: int) -> np.ndarray:
    """Stack per-record vectors of length ``k`` into ``(R, k)``; ``(0, k)`` when empty."""
    return np.array(rows, dtype=float).reshape(len(rows), k)


def _cell_density(rec: SpectrumRecord, grid: np.ndarray) -> np.ndarray:
    r"""Mean of the smoothed density over the cell of each grid point.

    Cells end halfway between grid points (the outer ones half a spacing beyond the
    ends); the value of cell :math:`[a, b]` is
    :math:`\sum_j w_j (\Phi((b - \theta_j)/\sigma_j) - \Phi((a - \theta_j)/\sigma_j)) / (b - a)`.
    Unlike point values, these keep the mass of peaks narrower than a cell (the spike of
    near-zero eigenvalues of a network's Hessian), so a heat map shows every peak.
    """
    mid = 0.5 * (grid[1:] + grid[:-1])
    edges = np.concatenate([[grid[0] - (mid[0] - grid[0])], mid,
                            [grid[-1] + (grid[-1] - mid[-1])]])
    cdf = ndtr((edges[:, None] - rec.nodes[None, :]) / rec.widths[None, :]) @ rec.weights
    return np.diff(cdf) / np.diff(edges)


def _history_grid(records: tuple, grid: Any) -> np.ndarray:
    if grid is not None and not isinstance(grid, (int, np.integer)):
        x = np.asarray(grid, dtype=float)
        if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
            raise ValueError("grid must be None, an int or a finite, strictly increasing 1-d "
                             "array of at least 2 points")
        return x
    points = _DEFAULT_GRID if grid is None else int(grid)
    if isinstance(grid, bool) or points < 2:
        raise ValueError(f"a grid needs at least 2 points, got {grid!r}")
    if not records:
        return np.linspace(0.0, 1.0, points)
    lo = min(float(np.min(r.nodes - 3.0 * r.widths)) for r in records)
    hi = max(float(np.max(r.nodes + 3.0 * r.widths)) for r in records)
    return np.linspace(lo, hi, points)


# ====================================================================== file format
def _history_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.suffix == ".jsonl" else p / FILENAME


#: How every header line begins (a cut-short header still begins like this).
_HEADER_START = b'{"format":"' + FORMAT.encode() + b'"'


def _header(config: dict) -> dict:
    return {"format": FORMAT, "version": VERSION, "config": config}


def _read(file: Path) -> tuple[dict | None, list[dict], int]:
    """Header, record dicts and the byte offset just past the last complete line.

    A line that does not parse is tolerated only at the end of the file (a write cut
    short by a crash); it is left out, with a warning.
    """
    data = file.read_bytes()
    pieces = data.split(b"\n")
    header, dicts, pos, good = None, [], 0, 0
    for i, raw in enumerate(pieces):
        end = pos + len(raw)
        nxt = min(end + 1, len(data))
        if raw.strip():
            try:
                obj = json.loads(raw)
            except ValueError:
                if i == 0 and not _HEADER_START.startswith(raw.strip()[:len(_HEADER_START)]):
                    raise ValueError(
                        f"{file}: not a spectrum history (its first line is not a {FORMAT} "
                        "header); it was left unchanged: pass the path of a history or of "
                        "a new file") from None
                if any(p.strip() for p in pieces[i + 1:]):
                    raise ValueError(f"{file}: line {i + 1} is not valid JSON (only a "
                                     "truncated last line is tolerated)") from None
                warnings.warn(f"{file}: dropped a truncated last line ({len(raw)} bytes; "
                              "a record cut short by a crash)", UserWarning, stacklevel=3)
                break
            if header is None and i == 0 and isinstance(obj, dict) and "format" in obj:
                if obj.get("format") != FORMAT or obj.get("version") != VERSION:
                    raise ValueError(f"{file}: not a {FORMAT} v{VERSION} file "
                                     f"(header {obj.get('format')!r} v{obj.get('version')})")
                header = obj
            elif i == 0:
                raise ValueError(f"{file}: the first line is not a {FORMAT} header")
            else:
                dicts.append(obj)
            good = nxt
        pos = end + 1
    return header, dicts, good


def _append_line(file: Path, obj: dict) -> None:
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with open(file, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
