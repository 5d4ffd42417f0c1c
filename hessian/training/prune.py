r"""Pruning by (near-)kernel membership of the training-trajectory Gramian.

A parameter direction :math:`e_k` lies in the kernel of the trajectory Gramian
:math:`W = \sum_t \frac{\eta_t}{n_t} J_t^T J_t` exactly when :math:`W_{kk} = 0`: moving
that coordinate never changed a training output along the whole trajectory, and
:math:`\lVert W e_k\rVert^2 \le \lambda_{\max}(W) W_{kk}` makes a small diagonal a
certificate of near-kernel membership (:doc:`/theory/pruning`). :class:`KernelPruner` reads the
streaming diagonal of a :class:`~hessian.TrajectoryGramian` and masks the coordinates
(or whole neurons / channels, by the group energy :math:`\operatorname{tr} W_{GG}`)
with the smallest scores:

``score="gramian"``
    :math:`s_k = W_{kk}`, output-space sensitivity accumulated along the path;
``score="obd"``
    :math:`s_k = \frac12 w_k^2 W_{kk} / \sum_t \eta_t`, Optimal Brain Damage [1]_ with
    the path-averaged Gauss-Newton matrix as curvature: the predicted increase of the
    mean squared output change when :math:`w_k` is set to zero.

Coordinates with :math:`W_{kk} \le \tau_{\rm rel} \operatorname{tr}(W) / P` (near
kernel) always go first, ordered by score among themselves; with ``tau_rel=0`` that is
the exact kernel :math:`W_{kk} = 0`. An optional SNR-gate history (the per-coordinate
EMA of the gate of :class:`~hessian.SNRAdamW`, ``gate_statistics()``) multiplies the
score, so coordinates whose gradient signal stayed insignificant go earlier.

Masks are ``torch.nn.utils.prune.custom_from_mask`` masks: they accumulate (what is
pruned stays pruned), the optimizer keeps stepping the same parameter objects
(``weight_orig``), and ``torch.nn.utils.prune.remove`` (:meth:`KernelPruner.remove`)
makes them permanent. The target sparsity follows the cubic schedule of Zhu & Gupta
[2]_ over the calls of :meth:`KernelPruner.step`.

References
----------
.. [1] Y. LeCun, J. S. Denker, S. A. Solla, "Optimal brain damage", NeurIPS 1990.
.. [2] M. Zhu, S. Gupta, "To prune, or not to prune: exploring the efficacy of pruning
   for model compression", arXiv:1710.01878 (2017).
.. [3] C. Wang, R. Grosse, S. Fidler, G. Zhang, "EigenDamage: structured pruning in the
   Kronecker-factored eigenbasis", ICML 2019.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as tprune

from spectra.validation import check_choice, check_float, check_int

from .trajectory import TrajectoryGramian

__all__ = ["KernelPruner", "PruneReport"]

GRANULARITIES = ("weight", "neuron", "channel")
SCORES = ("gramian", "obd")
SCOPES = ("global", "layer")


@dataclass(frozen=True, eq=False)
class PruneReport:
    r"""State of the pruning after a step.

    Attributes
    ----------
    step : int
        Calls of :meth:`KernelPruner.step` so far.
    target_sparsity : float
        The sparsity asked for at this step (schedule or :meth:`~KernelPruner.prune_to`).
    sparsity : float
        Pruned share of the prunable coordinates.
    per_tensor : dict
        ``"module.weight"`` -> pruned share of that tensor.
    num_pruned, num_prunable : int
        Coordinates.
    units_pruned, num_units : int
        Pruning units: coordinates (``"weight"``) or neurons / channels.
    mass_removed : float
        :math:`\sum_{k\,\rm pruned} W_{kk} / \operatorname{tr} W` (trace over all the
        Gramian's parameters).
    num_near_kernel : int
        Prunable units with :math:`W_{kk} \le \tau_{\rm rel} \operatorname{tr}(W) / P`
        (group: the sum, against the threshold times the group size).
    threshold : float
        :math:`\tau_{\rm rel} \operatorname{tr}(W) / P`.
    granularity, score : str
    message : str
    """

    step: int
    target_sparsity: float
    sparsity: float
    per_tensor: dict[str, float] = field(repr=False)
    num_pruned: int
    num_prunable: int
    units_pruned: int
    num_units: int
    mass_removed: float
    num_near_kernel: int
    threshold: float
    granularity: str
    score: str
    message: str


@dataclass
class _Target:
    """One prunable tensor: where it lives and where its Gramian diagonal is."""

    name: str          # "module.weight"
    module: nn.Module
    attr: str          # "weight" / "bias"
    param: torch.Tensor
    gram_name: str
    bias: _Target | None = None  # structured: the unit's bias tensor


def _mask(t: _Target) -> torch.Tensor:
    m = getattr(t.module, t.attr + "_mask", None)
    return torch.ones_like(t.param) if m is None else m


def _is_pruned_attr(module: nn.Module, attr: str) -> bool:
    return attr.endswith("_orig") and hasattr(module, attr[:-5] + "_mask")


def _sparsity(x: Any, name: str) -> float:
    return check_float(x, name, low=0.0, high=1.0, high_open=True)



class KernelPruner:
    r"""Prune a model by its trajectory-Gramian diagonal through ``torch.nn.utils.prune``.

    Parameters
    ----------
    model : torch.nn.Module
        The model the Gramian was accumulated on (masks are added to its modules).
    gramian : TrajectoryGramian
        Over (a superset of) the parameters to prune.
    granularity : {"weight", "neuron", "channel"}
        Prune single coordinates of every weight with two or more dimensions (and of
        biases with ``include_bias``); whole output units (dimension 0) of ``nn.Linear``
        and ``nn.ConvNd`` weights together with their bias entries (``"neuron"``); or
        of convolutions only (``"channel"``). Sparsity targets count units.
    score : {"gramian", "obd"}
        Module docstring.
    target_sparsity : float or None
        Final share of units pruned, in ``[0, 1)``. ``None``: threshold mode, every
        :meth:`step` prunes all near-kernel units (and, with ``gate``, only those whose
        mean gate is at most ``gate_closed``: the rule of :doc:`/theory/pruning`).
    steps : int
        Calls of :meth:`step` over which the cubic schedule
        :math:`s_t = s_f + (s_i - s_f)(1 - t/\text{steps})^3` reaches the target.
    initial_sparsity : float
        :math:`s_i`.
    scope : {"global", "layer"}
        Rank all units together (one threshold for the whole model), or give every
        prunable tensor the same sparsity and rank within it. Global ranking can empty
        a whole layer when its scores are uniformly small ("layer collapse"; see
        ``benchmarks/bench_prune.py``).
    schedule : callable, optional
        ``schedule(t) -> sparsity`` for call ``t = 1, 2, ...``, replacing the cubic one.
    tau_rel : float
        Near-kernel threshold relative to the mean diagonal :math:`\operatorname{tr}W/P`.
    gate : SNRAdamW, dict or callable, optional
        Gate history: an optimizer with ``gate_statistics()`` (``SNRAdamW(...,
        gate_ema=...)``), a dict ``{parameter: tensor in [0, 1]}``, or a callable
        ``parameter -> tensor or None``. Missing parameters count as open (1).
    gate_closed : float
        Threshold-mode cutoff on the mean gate of a unit.
    include_bias : bool
        With ``"weight"``: prune bias coordinates too.
    exclude : iterable of str
        Module names never pruned (e.g. the output layer).

    Raises
    ------
    TypeError
        ``gramian`` is not a :class:`TrajectoryGramian`.
    ValueError
        Unknown granularity or score, sparsities outside ``[0, 1)``, ``steps < 1``,
        negative ``tau_rel``, unknown module names in ``exclude``, or nothing prunable.

    Examples
    --------
    >>> import torch, hessian
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 3))
    >>> W = hessian.TrajectoryGramian(model, generator=g)
    >>> W.update(torch.randn(32, 4, generator=g), 0.1)
    >>> pruner = hessian.KernelPruner(model, W, target_sparsity=0.5, steps=2)
    >>> round(pruner.step().sparsity, 3), round(pruner.step().sparsity, 3)
    (0.429, 0.5)
    """

    def __init__(self, model: nn.Module, gramian: TrajectoryGramian, *,
                 granularity: str = "weight", score: str = "gramian",
                 target_sparsity: float | None = 0.5, steps: int = 1,
                 initial_sparsity: float = 0.0, scope: str = "global",
                 schedule: Callable[[int], float] | None = None, tau_rel: float = 1e-3,
                 gate: Any = None, gate_closed: float = 0.5, include_bias: bool = False,
                 exclude: Iterable[str] = ()) -> None:
        if not isinstance(gramian, TrajectoryGramian):
            raise TypeError(f"gramian must be a hessian.TrajectoryGramian, got "
                            f"{type(gramian).__name__}")
        check_choice(granularity, "granularity", GRANULARITIES)
        check_choice(score, "score", SCORES)
        check_choice(scope, "scope", SCOPES)
        self.target_sparsity = (None if target_sparsity is None
                                else _sparsity(target_sparsity, "target_sparsity"))
        self.initial_sparsity = _sparsity(initial_sparsity, "initial_sparsity")
        if self.target_sparsity is not None and self.initial_sparsity > self.target_sparsity:
            raise ValueError(f"initial_sparsity {initial_sparsity} exceeds target_sparsity "
                             f"{target_sparsity}")
        steps = check_int(steps, "steps", low=1)
        tau_rel = check_float(tau_rel, "tau_rel", low=0.0)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable(step) -> sparsity, got "
                            f"{type(schedule).__name__}")
        self.model, self.gramian = model, gramian
        self.granularity, self.score, self.scope = granularity, score, scope
        self.steps, self.schedule = steps, schedule
        self.tau_rel, self.gate, self.gate_closed = float(tau_rel), gate, float(gate_closed)
        self.include_bias = bool(include_bias)
        self.exclude = set(exclude)
        modules = dict(model.named_modules())
        unknown = self.exclude - set(modules)
        if unknown:
            raise ValueError(f"exclude names modules the model does not have: {sorted(unknown)}")
        self.targets = self._find_targets(modules)
        self.num_steps = 0
        self._last_target = 0.0

    # ------------------------------------------------------------------ targets
    def _find_targets(self, modules: dict) -> list[_Target]:
        gram = {id(p): n for n, p in zip(self.gramian.param_names, self.gramian.params,
                                         strict=True)}
        found: dict[tuple[str, str], _Target] = {}
        for mname, mod in modules.items():
            for attr, p in mod._parameters.items():
                if p is None or id(p) not in gram:
                    continue
                base = attr[:-5] if _is_pruned_attr(mod, attr) else attr
                name = f"{mname}.{base}" if mname else base
                found[(mname, base)] = _Target(name, mod, base, p, gram[id(p)])
        if not found:
            raise ValueError("none of the Gramian's parameters belongs to the model")
        targets = []
        for (mname, base), t in found.items():
            if mname in self.exclude:
                continue
            if self.granularity == "weight":
                if (base == "weight" and t.param.ndim >= 2) or (base == "bias"
                                                                and self.include_bias):
                    targets.append(t)
                continue
            conv = isinstance(t.module, nn.modules.conv._ConvNd)
            lin = isinstance(t.module, nn.Linear)
            if base != "weight" or not (conv or (lin and self.granularity == "neuron")):
                continue
            b = found.get((mname, "bias"))
            t.bias = b if b is not None and b.param.shape == t.param.shape[:1] else None
            targets.append(t)
        if not targets:
            raise ValueError(f"nothing to prune at granularity {self.granularity!r}: no "
                             "matching weight among the Gramian's parameters")
        return targets

    # ------------------------------------------------------------------ scores
    def _gate_of(self, p: torch.Tensor) -> torch.Tensor | None:
        g = self.gate
        if g is None:
            return None
        if hasattr(g, "gate_statistics"):
            v = g.gate_statistics().get(p)
        elif isinstance(g, dict):
            v = g.get(p)
        elif callable(g):
            v = g(p)
        else:
            raise TypeError("gate must be an optimizer with gate_statistics(), a dict "
                            f"{{parameter: tensor}} or a callable, got {type(g).__name__}")
        if v is None:
            return None
        return torch.as_tensor(v).detach().to(p.device).clamp(0.0, 1.0).expand_as(p)

    def _coord_scores(self, t: _Target, diag: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, diagonal) of every coordinate of ``t`` in the accumulation dtype."""
        d = diag[t.gram_name]
        if self.score == "gramian":
            s = d.clone()
        else:
            w = (t.param.detach() * _mask(t)).to(d.dtype)
            s = 0.5 * w.square() * d / max(self.gramian.total_weight, 1e-300)
        gate = self._gate_of(t.param)
        if gate is not None:
            s = s * gate.to(d.dtype)
        return s, d

    def _units(self) -> dict[str, Any]:
        """Per unit: score, diagonal sum, size, pruned flag, gate mean, owning target."""
        diag = self.gramian.diagonal()
        cols: dict[str, list] = {"score": [], "diag": [], "size": [], "pruned": [],
                                 "gate": [], "owner": []}
        for i, t in enumerate(self.targets):
            s, d = self._coord_scores(t, diag)
            m = _mask(t)
            gate = self._gate_of(t.param)
            gate = torch.ones_like(d) if gate is None else gate.to(d.dtype)
            if self.granularity == "weight":
                parts = [s.reshape(-1), d.reshape(-1), torch.ones_like(d).reshape(-1),
                         (m == 0).reshape(-1), gate.reshape(-1)]
            else:
                rows = t.param.shape[0]
                parts = [s.reshape(rows, -1).sum(1), d.reshape(rows, -1).sum(1),
                         torch.full((rows,), float(t.param[0].numel()), dtype=d.dtype,
                                    device=d.device),
                         (m.reshape(rows, -1) == 0).all(1), gate.reshape(rows, -1).mean(1)]
                if t.bias is not None:
                    sb, db = self._coord_scores(t.bias, diag)
                    parts[0], parts[1], parts[2] = parts[0] + sb, parts[1] + db, parts[2] + 1
            for key, val in zip(("score", "diag", "size", "pruned", "gate"), parts,
                                strict=True):
                cols[key].append(val)
            cols["owner"].append(torch.full((parts[0].numel(),), i, dtype=torch.long,
                                            device=d.device))
        return {k: torch.cat(v) for k, v in cols.items()}

    def threshold(self) -> float:
        r"""The near-kernel threshold :math:`\tau_{\rm rel}\operatorname{tr}(W)/P`."""
        return self.tau_rel * self.gramian.trace() / self.gramian.num_params

    def scores(self) -> dict[str, torch.Tensor]:
        """Scores the ranking uses, per prunable tensor (per unit when structured).

        Returns
        -------
        dict
            ``"module.weight"`` -> tensor of the weight's shape (``"weight"``) or
            ``(units,)`` (neurons / channels).
        """
        u = self._units()
        return {t.name: u["score"][u["owner"] == i].reshape(
            t.param.shape if self.granularity == "weight" else (-1,))
            for i, t in enumerate(self.targets)}

    # ------------------------------------------------------------------ pruning
    def _scheduled(self, t: int) -> float:
        if self.schedule is not None:
            return _sparsity(self.schedule(t), f"schedule({t})")
        sf, si = self.target_sparsity, self.initial_sparsity
        frac = min(t / self.steps, 1.0)
        return sf + (si - sf) * (1.0 - frac) ** 3

    def step(self) -> PruneReport:
        """Advance the schedule by one call and prune up to its sparsity.

        Returns
        -------
        PruneReport
        """
        self.num_steps += 1
        if self.target_sparsity is None and self.schedule is None:
            return self._prune_near_kernel()
        return self.prune_to(self._scheduled(self.num_steps))

    def prune_to(self, sparsity: float) -> PruneReport:
        """Prune the lowest-ranked unpruned units until ``sparsity`` of the units are pruned.

        Already pruned units stay pruned; a sparsity below the current one prunes nothing.

        Parameters
        ----------
        sparsity : float
            In ``[0, 1)``.

        Returns
        -------
        PruneReport
        """
        s = _sparsity(sparsity, "sparsity")
        self._check_gramian()
        u = self._units()
        kernel = u["diag"] <= self.threshold() * u["size"]
        new = u["pruned"].clone()
        if self.scope == "global":
            groups = [torch.arange(u["score"].numel(), device=new.device)]
        else:
            groups = [(u["owner"] == i).nonzero()[:, 0] for i in range(len(self.targets))]
        for idx in groups:
            want = min(int(round(s * idx.numel())), idx.numel())
            have = int(u["pruned"][idx].sum())
            if want <= have:
                continue
            o1 = torch.argsort(u["score"][idx], stable=True)
            o2 = torch.argsort((~kernel[idx][o1]).to(torch.uint8), stable=True)
            order = idx[o1[o2]]  # near-kernel units first, then by score
            new[order[~u["pruned"][order]][: want - have]] = True
        if bool((new != u["pruned"]).any()):
            self._apply(new, u["owner"])
        self._last_target = s
        return self.report()

    def _prune_near_kernel(self) -> PruneReport:
        self._check_gramian()
        u = self._units()
        new = u["pruned"] | (u["diag"] <= self.threshold() * u["size"])
        if self.gate is not None:
            new = u["pruned"] | (new & (u["gate"] <= self.gate_closed))
        if bool((new != u["pruned"]).any()):
            self._apply(new, u["owner"])
        self._last_target = float(new.double().mean())
        return self.report()

    def _check_gramian(self) -> None:
        if self.gramian.num_updates == 0:
            raise ValueError("the Gramian is empty: call gramian.update() during training "
                             "before pruning")

    def _apply(self, pruned_units: torch.Tensor, owner: torch.Tensor) -> None:
        for i, t in enumerate(self.targets):
            flags = pruned_units[owner == i]
            old = _mask(t)
            if self.granularity == "weight":
                keep = ~flags.reshape(t.param.shape)
            else:
                keep = ~flags.reshape(-1, *([1] * (t.param.ndim - 1))).expand_as(t.param)
            self._set_mask(t, old, keep)
            if t.bias is not None:
                self._set_mask(t.bias, _mask(t.bias), ~flags)

    @staticmethod
    def _set_mask(t: _Target, old: torch.Tensor, keep: torch.Tensor) -> None:
        new = old * keep.to(device=old.device, dtype=old.dtype)
        if hasattr(t.module, t.attr + "_mask") and torch.equal(new, old):
            return  # every prunable tensor gets a mask on the first pruning, then only changes
        tprune.custom_from_mask(t.module, t.attr, new)

    def remove(self) -> None:
        """Make the masks permanent (``torch.nn.utils.prune.remove``) and drop them."""
        for t in self.targets:
            for x in (t, t.bias):
                if x is not None and tprune.is_pruned(x.module) \
                        and hasattr(x.module, x.attr + "_mask"):
                    tprune.remove(x.module, x.attr)

    # ------------------------------------------------------------------ report
    def report(self) -> PruneReport:
        """Sparsity per tensor and overall, Gramian mass removed, counts.

        Returns
        -------
        PruneReport
        """
        diag = self.gramian.diagonal()
        tr = self.gramian.trace()
        per, pruned, total, mass = {}, 0, 0, 0.0
        seen = []
        for t in self.targets:
            for x in (t, t.bias):
                if x is None or x.name in seen:
                    continue
                seen.append(x.name)
                off = _mask(x) == 0
                k = int(off.sum())
                per[x.name] = k / x.param.numel()
                pruned += k
                total += x.param.numel()
                mass += float(diag[x.gram_name][off.to(diag[x.gram_name].device)].sum())
        u = self._units()
        thr = self.threshold()
        near = int((u["diag"] <= thr * u["size"]).sum())
        units_pruned = int(u["pruned"].sum())
        frac = mass / tr if tr > 0 else float("nan")
        msg = (f"step {self.num_steps}: {units_pruned}/{u['score'].numel()} "
               f"{'coordinates' if self.granularity == 'weight' else self.granularity + 's'} "
               f"pruned ({pruned / max(total, 1):.1%} of the prunable coordinates), "
               f"{frac:.2%} of the Gramian trace removed; {near} units near the kernel")
        return PruneReport(self.num_steps, self._last_target, pruned / max(total, 1), per,
                           pruned, total, units_pruned, int(u["score"].numel()), frac, near,
                           thr, self.granularity, self.score, msg)

    def __repr__(self) -> str:
        return (f"KernelPruner(granularity={self.granularity!r}, score={self.score!r}, "
                f"target_sparsity={self.target_sparsity}, step={self.num_steps})")
