r"""Curvature spectra recorded during training, with a crash-safe history on disk.

:class:`SpectrumMonitor` is called once per training step and, every ``every`` steps,
measures the curvature of the model (Hessian, GGN, Fisher, Jacobian Gram or NTK) on a
**fixed probe batch** with **fixed random probes**, so that what changes from one record
to the next is the model, not the estimator's randomness. Each record holds

* the top ``k`` eigenvalues by thick-restart Lanczos (:func:`spectra.eigsh`) with their
  residual norms :math:`\|Hx - \theta x\|`, warm-started from the previous record's top
  eigenvector (see below);
* a trace estimate :math:`\operatorname{tr} H` with its standard error (XTrace by
  default, :func:`spectra.trace`);
* the raw stochastic Lanczos quadrature measure :math:`\sum_j w_j \delta_{\theta_j}`
  of the spectral density (:func:`spectra.quadrature.slq_measure`): Ritz values, weights
  and, per node, the display width :math:`\sigma_j` of :func:`spectra.densities.auto_smoothing`,
  so the smoothed density :math:`\rho(x) = \sum_j w_j \phi_{\sigma_j}(x - \theta_j)`
  can be evaluated on any grid afterwards;
* the loss on the probe batch, the products used and the seconds taken.

A history of records (:class:`SpectrumHistory`) puts the densities of all records on one
common grid (a heat map of the spectrum over training, drawn by
:func:`hessian.training.plot.spectra_over_training`, also ``hessian.plot``).

Why these choices
-----------------
*Common grid at read time.* The spectral range drifts during training (the top
eigenvalue of a network's Hessian typically grows by an order of magnitude early on),
so a grid fixed before the first record either clips the outliers or wastes its
resolution. Records therefore keep the raw quadrature measure, and the grid is chosen
when the history is read (or passed explicitly as ``grid=``).

*History format: append-only JSON lines.* The first line is a header (format, version,
the settings that must match on resume); every further line is one record. Each line is
written with one ``write``, flushed and ``fsync``'d before the monitor returns, so a
crash loses at most the record being written; on reading, a truncated last line is
dropped (with a warning) and any other malformed line is an error. JSON floats are
written with Python's shortest round-trip ``repr``, so a history read back equals the
one written bit for bit. Creating a monitor on an existing history *resumes* it: the
records are loaded, the settings are checked against the file, a truncated last line is
cut off, steps already recorded are skipped, and :meth:`~SpectrumMonitor.step` without a
step number continues one past the last recorded step. A file at ``path`` that is not a
history (its first line is not a history header) is refused and left unchanged.
Records, histories and the file format are implemented in ``hessian.training._history``.

*Warm start.* Between records the model moves little, so the previous top eigenvector
is a good start vector for Lanczos: ``warm_start=True`` passes it (the sum of the top
``k`` eigenvectors for ``k > 1``) as ``v0``. Convergence is still tested on the residual
of the new operator, so the result is as accurate as from a random start. Measured on
the digits example (2,410 weights, SGD): 5-15% fewer Lanczos products (more for
closer records and looser ``tol``), eigenvalues equal to 1e-12; a modest saving, since
Lanczos from a random start already needs only 10-20 products there.

References
----------
.. [1] B. Ghorbani, S. Krishnan, Y. Xiao, "An investigation into neural net
   optimization via Hessian eigenvalue density", ICML 2019.
.. [2] J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar, "Gradient descent on
   neural networks typically occurs at the edge of stability", ICLR 2021.
.. [3] S. Ubaru, J. Chen, Y. Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
   quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch

import spectra
from spectra.densities import auto_smoothing
from spectra.krylov import WHICH
from spectra.probes import PROBES, as_rng
from spectra.quadrature import slq_measure
from spectra.results import NonFiniteError
from spectra.stochtrace import TRACE_METHODS
from spectra.validation import check_choice, check_float, check_int

from ..curvature.model import eval_mode
from ..curvature.operators import NTKOperator
from ..curvature.spectrum import curvature_operator, top_eigenvalues
from ._history import FILENAME as FILENAME  # re-exported
from ._history import FORMAT as FORMAT  # re-exported
from ._history import VERSION as VERSION  # re-exported
from ._history import (
    SpectrumHistory,
    SpectrumRecord,
    _append_line,
    _header,
    _history_file,
    _history_grid,
    _read,
)

__all__ = ["SpectrumHistory", "SpectrumMonitor", "SpectrumRecord"]

#: Curvature kinds a monitor can record.
KINDS = ("hessian", "ggn", "fisher", "jtj", "ntk")
#: Settings that must agree between a history file and the monitor resuming it.
_MATCH = ("k", "which", "num_probes", "num_steps", "probe", "trace_matvecs",
          "trace_method", "seed", "dims")
_SEED_EIG, _SEED_TRACE, _SEED_DENSITY = 0, 1, 2


# ====================================================================== monitor
class SpectrumMonitor:
    r"""Record curvature spectra of a model every ``every`` training steps.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained. Each record switches it to eval mode (dropout off,
        BatchNorm on running statistics) and back.
    loss_fn : callable, optional
        As for :class:`hessian.HessianOperator`; not used for ``"jtj"``/``"ntk"``.
    data : tuple or iterable
        The **fixed** probe batch (or batches): every record uses the same data.
    every : int
        Record at the steps divisible by ``every`` (step 0 included).
    what : str or sequence of str
        Curvature kinds from ``("hessian", "ggn", "fisher", "jtj", "ntk")``.
    k : int
        Number of top eigenvalues.
    which : {"LA", "SA", "LM", "BE"}
        Which end of the spectrum (see :func:`spectra.eigsh`).
    tol : float
        Relative residual tolerance of the eigenvalues.
    max_matvecs : int, optional
        Lanczos product budget per record (default: :func:`spectra.eigsh`'s).
    trace_matvecs : int
        Products of the trace estimate (a budget at or above the dimension is exact).
    trace_method : {"xtrace", "xnystrace", "hutchpp", "hutchinson"}
    num_probes, num_steps : int
        SLQ probes and Lanczos steps per probe for the density (``num_steps`` at or
        above the dimension gives the exact eigenvalues).
    probe : {"rademacher", "gaussian", "sphere"}
        SLQ probe distribution.
    grid : None, int or array_like
        Grid of the histories' densities (see :class:`SpectrumHistory`).
    path : str or path-like, optional
        A ``.jsonl`` file or a directory for the history (created if missing). An
        existing history is resumed.
    rng : None, int, numpy or torch Generator
        Seed of the probes, drawn once: every record uses the same probes. ``None``
        draws fresh entropy, or reuses the seed of a history being resumed.
    warm_start : bool
        Start Lanczos from the previous record's top eigenvector(s).
    **kwargs
        Curvature operator options (``dtype``, ``params``, ``mode``, ``max_probes``,
        ``move_data``...; see :class:`hessian.HessianOperator`).

    Raises
    ------
    ValueError
        Bad settings (named), a history file whose settings differ from these, a
        malformed history file.

    Notes
    -----
    Call :meth:`step` once per training step, before the update: the record of step
    ``t`` is then the curvature at the weights update ``t`` starts from (step 0: the
    initialisation). Its counter starts at 0; when training resumes from a checkpoint,
    pass ``step=`` explicitly. A record whose loss or curvature products are NaN or Inf
    raises ``ValueError`` naming the training step (chained to the operator's error,
    which names the batch).

    A record costs ``eig_matvecs + trace_matvecs + density_matvecs`` curvature
    products (about ``10-40 + trace_matvecs + num_probes * num_steps``), plus two at
    the first record of each kind for the operator's determinism check.

    Examples
    --------
    >>> import torch, hessian
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 3))
    >>> X, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> mon = hessian.SpectrumMonitor(model, torch.nn.CrossEntropyLoss(), (X, y),
    ...                               every=5, num_steps=20, trace_matvecs=20, rng=0)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> for _ in range(11):
    ...     _ = mon.step()
    ...     opt.zero_grad()
    ...     torch.nn.functional.cross_entropy(model(X), y).backward()
    ...     opt.step()
    >>> h = mon.history
    >>> h.steps.tolist(), h.top_eigenvalues.shape, h.densities.shape
    ([0, 5, 10], (3, 1), (3, 400))
    """

    def __init__(self, model: torch.nn.Module, loss_fn: Any = None, data: Any = None, *,
                 every: int = 100, what: Any = ("hessian",), k: int = 1, which: str = "LA",
                 tol: float = 1e-6, max_matvecs: int | None = None, trace_matvecs: int = 40,
                 trace_method: str = "xtrace", num_probes: int = 4, num_steps: int = 40,
                 probe: str = "rademacher", grid: Any = None,
                 path: str | os.PathLike | None = None, rng: Any = None,
                 warm_start: bool = True, **kwargs: Any) -> None:
        self.what = _check_what(what)
        self.every = check_int(every, "every", low=1)
        self.k = check_int(k, "k", low=1)
        check_choice(which, "which", WHICH)
        check_choice(trace_method, "trace_method", TRACE_METHODS)
        check_choice(probe, "probe", PROBES)
        tol = check_float(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
        if max_matvecs is not None:
            check_int(max_matvecs, "max_matvecs", low=1, hint=" (None: the default budget)")
        self.which, self.tol, self.max_matvecs = which, tol, max_matvecs
        self.trace_matvecs = check_int(trace_matvecs, "trace_matvecs", low=1)
        self.num_probes = check_int(num_probes, "num_probes", low=1)
        self.num_steps = check_int(num_steps, "num_steps", low=1)
        self.trace_method, self.probe = trace_method, probe
        self.grid, self.warm_start = grid, bool(warm_start)
        _history_grid((), grid)  # validate now, not at the first read
        if data is None:
            raise ValueError("data (the fixed probe batch) is required")
        self.model, self.loss_fn, self.data, self.kwargs = model, loss_fn, data, kwargs
        # build every operator once: bad model/loss/data/options fail here, not mid-training
        self._batching: dict[str, str] = {}
        with eval_mode(model):
            dims = {kind: int(self._operator(kind, check=False).shape[0]) for kind in self.what}
        self.records: list[SpectrumRecord] = []
        self._last: dict[str, int] = {}
        self._vectors: dict[str, Any] = {}
        self._checked: set[str] = set()
        self._counter = 0
        self.file = None if path is None else _history_file(path)
        seed = None if rng is None else _seed(rng)
        resumed = self._resume(seed, dims) if self.file is not None else None
        self.seed = resumed if resumed is not None else (_seed(None) if seed is None else seed)
        self.config = {"what": list(self.what), "k": self.k, "which": which,
                       "num_probes": self.num_probes, "num_steps": self.num_steps,
                       "probe": probe, "trace_matvecs": self.trace_matvecs,
                       "trace_method": trace_method, "seed": self.seed, "dims": dims,
                       "every": self.every}
        if self._last:  # resumed: step() without a number continues after the last record
            self._counter = max(self._last.values()) + 1
        if self.file is not None and resumed is None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.file.write_bytes(b"")
            _append_line(self.file, _header(self.config))

    # ------------------------------------------------------------------ public
    @property
    def next_step(self) -> int:
        """The step number :meth:`step` will use when called without one."""
        return self._counter

    def step(self, step: int | None = None) -> dict[str, SpectrumRecord] | None:
        """Advance one training step; record when the step is a multiple of ``every``.

        Parameters
        ----------
        step : int, optional
            The training step (default: an internal counter starting at 0, or, on a
            resumed history, one past its last recorded step).

        Returns
        -------
        dict or None
            ``{kind: SpectrumRecord}`` for the kinds recorded, or ``None`` when nothing
            was due (off-schedule, or already in a resumed history).
        """
        step = self._counter if step is None else check_int(step, "step", low=0)
        self._counter = step + 1
        if step % self.every:
            return None
        todo = [kind for kind in self.what if step > self._last.get(kind, -1)]
        return self._record(step, todo) if todo else None

    def record(self, step: int) -> dict[str, SpectrumRecord]:
        """Record every kind now, whatever the schedule.

        Parameters
        ----------
        step : int
            Training step to file the record under; must exceed every recorded step.

        Returns
        -------
        dict
            ``{kind: SpectrumRecord}``.
        """
        step = check_int(step, "step", low=0)
        done = [kind for kind in self.what if step <= self._last.get(kind, -1)]
        if done:
            raise ValueError(f"step {step} is not after the last recorded step "
                             f"{max(self._last[k] for k in done)} ({done}); steps must increase")
        return self._record(step, list(self.what))

    @property
    def histories(self) -> dict[str, SpectrumHistory]:
        """One :class:`SpectrumHistory` per recorded kind, on the monitor's grid."""
        cfg = self.config
        return {kind: SpectrumHistory(tuple(r for r in self.records if r.kind == kind),
                                      self.grid, cfg) for kind in self.what}

    @property
    def history(self) -> SpectrumHistory:
        """The :class:`SpectrumHistory` of the single kind monitored."""
        if len(self.what) != 1:
            raise ValueError(f"the monitor records {list(self.what)}; use "
                             "mon.histories[kind]")
        return self.histories[self.what[0]]

    # ------------------------------------------------------------------ internals
    def _record(self, step: int, kinds: list[str]) -> dict[str, SpectrumRecord]:
        out = {}
        with eval_mode(self.model):
            for kind in kinds:
                rec = self._measure(kind, step)
                if self.file is not None:
                    _append_line(self.file, rec.to_dict())
                self.records.append(rec)
                self._last[kind] = step
                out[kind] = rec
        return out

    def _operator(self, kind: str, check: bool) -> Any:
        # keep the first record's measured loop/vmap choice: same rounding, no re-timing
        opts = {"batching": self._batching.get(kind, "auto"), **self.kwargs,
                "check_deterministic": check}
        if kind == "ntk":
            return NTKOperator(self.model, self.data, **opts)
        return curvature_operator(self.model, self.loss_fn, self.data, kind=kind, **opts)

    def _rng(self, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, purpose])

    def _measure(self, kind: str, step: int) -> SpectrumRecord:
        t0 = time.perf_counter()
        op = self._operator(kind, check=False)
        loss = None if kind in ("jtj", "ntk") else op.loss()
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteError(f"SpectrumMonitor: the loss on the probe batch is {loss} at "
                                 f"training step {step}; the model or the data produce "
                                 "non-finite values")
        try:
            eig, warm, tr, m = self._estimates(op, kind)
        except FloatingPointError as err:
            raise NonFiniteError(f"SpectrumMonitor: NaN or Inf in the {kind} products at "
                                 f"training step {step}: {err}") from err
        p = len(m.nodes)
        nodes = np.concatenate(m.nodes)
        weights = np.concatenate([np.clip(w, 0, None) / np.clip(w, 0, None).sum() / p
                                  for w in m.weights])
        widths = np.concatenate([auto_smoothing(t) for t in m.nodes])
        vals = np.concatenate([eig.eigenvalues, [tr.value], nodes])
        if not np.all(np.isfinite(vals)):
            raise NonFiniteError(f"SpectrumMonitor: non-finite {kind} spectrum at training "
                                 f"step {step} (eigenvalues {eig.eigenvalues}, trace "
                                 f"{tr.value})")
        return SpectrumRecord(
            step=step, kind=kind, eigenvalues=np.asarray(eig.eigenvalues, dtype=float),
            residual_norms=np.asarray(eig.residual_norms, dtype=float),
            converged=bool(eig.converged), trace=float(tr.value),
            trace_stderr=float(tr.stderr), nodes=nodes, weights=weights, widths=widths,
            loss=loss, eig_matvecs=int(eig.num_matvecs), trace_matvecs=int(tr.num_matvecs),
            density_matvecs=int(m.num_matvecs), warm_start=warm,
            seconds=time.perf_counter() - t0)

    def _estimates(self, op: Any, kind: str) -> tuple[Any, bool, Any, Any]:
        """Top eigenpairs (and whether warm-started), trace and SLQ measure of ``op``."""
        if kind not in self._checked:  # two products with one probe must agree
            op.check_deterministic()
            self._checked.add(kind)
        eig, warm = self._top(op, kind)
        tr = spectra.trace(op, self.trace_matvecs, method=self.trace_method,
                           rng=self._rng(_SEED_TRACE))
        m = slq_measure(op, num_probes=self.num_probes, num_steps=min(self.num_steps,
                        op.shape[0]), probe=self.probe, rng=self._rng(_SEED_DENSITY))
        if op.batched is not None:
            self._batching.setdefault(kind, "vmap" if op.batched else "loop")
        return eig, warm, tr, m

    def _top(self, op: Any, kind: str) -> tuple[Any, bool]:
        n = op.shape[0]
        if n <= self.k + 1:  # too small for a Krylov method: exact, by a dense solve
            return top_eigenvalues(op, k=self.k, which=self.which), False
        prev = self._vectors.get(kind) if self.warm_start else None
        v0 = None if prev is None else prev.sum(dim=1)
        res = spectra.eigsh(op, k=self.k, which=self.which, tol=self.tol,
                            max_matvecs=self.max_matvecs, v0=v0, rng=self._rng(_SEED_EIG))
        self._vectors[kind] = res.eigenvectors
        return res, v0 is not None

    def _resume(self, seed: int | None, dims: dict) -> int | None:
        """Load an existing history; return its seed (``None``: start a new file)."""
        file = self.file
        if not file.exists() or file.stat().st_size == 0:
            return None
        header, dicts, good = _read(file)
        if header is None:  # a crash while writing the header: start afresh
            return None
        cfg = header.get("config", {})
        now = {"k": self.k, "which": self.which, "num_probes": self.num_probes,
               "num_steps": self.num_steps, "probe": self.probe,
               "trace_matvecs": self.trace_matvecs, "trace_method": self.trace_method,
               "seed": cfg.get("seed") if seed is None else seed, "dims": dims}
        diff = [f"{key}: {cfg.get(key)!r} in the file, {now[key]!r} now" for key in _MATCH
                if key != "dims" and cfg.get(key) != now[key]]
        diff += [f"dimension of {kd}: {cfg.get('dims', {}).get(kd)} in the file, {d} now"
                 for kd, d in dims.items() if kd in cfg.get("dims", {})
                 and cfg["dims"][kd] != d]
        if diff:
            raise ValueError(f"cannot resume {file}: its settings differ ({'; '.join(diff)}); "
                             "use another path or the same settings")
        self.records = [SpectrumRecord.from_dict(d) for d in dicts]
        for r in self.records:
            self._last[r.kind] = max(self._last.get(r.kind, -1), r.step)
        with open(file, "r+b") as f:  # cut a truncated last line; end on a newline
            f.truncate(good)
            if good and (f.seek(good - 1), f.read(1))[1] != b"\n":
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        return int(cfg["seed"])


# ====================================================================== helpers
def _seed(rng: Any) -> int:
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng)
    if isinstance(rng, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device))
    g = as_rng(rng)  # None or a numpy Generator (raises TypeError otherwise)
    return int(g.integers(0, 2**62))


def _check_what(what: Any) -> tuple[str, ...]:
    kinds = (what,) if isinstance(what, str) else tuple(what)
    bad = [w for w in kinds if w not in KINDS]
    if not kinds or bad:
        raise ValueError(f"what must name curvature kinds from {KINDS}, got {what!r}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"what lists a kind twice: {what!r}")
    return kinds
