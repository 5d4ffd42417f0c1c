"""KernelPruner: kernel coordinates first, schedule, accumulating masks, report."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

import hessian
from hessian import KernelPruner, TrajectoryGramian

F64 = torch.float64
DEAD = 2  # input features 0 and 1 are always zero


def _model(seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return m


def _data(T: int, n: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(T):
        X = torch.randn(n, 6, generator=g, dtype=F64)
        X[:, :DEAD] = 0.0
        out.append((X, torch.randn(n, 3, generator=g, dtype=F64)))
    return out


def _trained(seed: int = 0, T: int = 5, lr: float = 0.05):
    """A model trained by SGD on inputs with dead features, its Gramian and the data."""
    model = _model(seed)
    G = TrajectoryGramian(model, num_probes=2, generator=seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    data = _data(T)
    for X, y in data:
        out = model(X)
        G.update(X, lr, outputs=out)
        opt.zero_grad()
        (0.5 * ((out - y) ** 2).sum() / len(X)).backward()
        opt.step()
    return model, G, data


@pytest.mark.parametrize("score", ["gramian", "obd"])
def test_dead_inputs_are_exactly_the_first_coordinates_pruned(score):
    model, G, data = _trained()
    d = G.diagonal()["0.weight"]
    assert (d[:, :DEAD] == 0).all() and (d[:, DEAD:] > 0).all()
    before = [model(X).detach() for X, _ in data]
    pruner = KernelPruner(model, G, score=score, tau_rel=0.0)
    n_dead = 8 * DEAD
    rep = pruner.prune_to(n_dead / (48 + 24))
    mask = model[0].weight_mask
    assert (mask[:, :DEAD] == 0).all() and (mask[:, DEAD:] == 1).all()
    assert (model[2].weight_mask == 1).all()
    assert rep.num_pruned == n_dead and rep.num_prunable == 72
    assert rep.per_tensor == {"0.weight": n_dead / 48, "2.weight": 0.0}
    assert rep.mass_removed == 0.0 and rep.num_near_kernel == n_dead
    for (X, _), out in zip(data, before, strict=True):  # dead weights never mattered
        torch.testing.assert_close(model(X), out, rtol=0, atol=0)


def test_threshold_mode_prunes_the_kernel_only():
    model, G, _ = _trained(seed=3)
    pruner = KernelPruner(model, G, target_sparsity=None, tau_rel=0.0)
    rep = pruner.step()
    assert rep.num_pruned == 8 * DEAD
    assert (model[0].weight_mask[:, :DEAD] == 0).all()
    assert int((model[0].weight_mask == 0).sum()) == 8 * DEAD


def test_dead_neuron_is_the_first_unit_pruned():
    model = _model(1)
    j = 5
    with torch.no_grad():
        model[2].weight[:, j] = 0.0  # hidden unit j reaches no output
    G = TrajectoryGramian(model, num_probes=3, generator=0)
    for X, _ in _data(3):
        G.update(X, 0.1)
    assert float(G.group_energy()["0"][j]) == 0.0
    pruner = KernelPruner(model, G, granularity="neuron", tau_rel=0.0)
    rep = pruner.prune_to(1 / 11)  # 8 hidden + 3 output units
    wm, bm = model[0].weight_mask, model[0].bias_mask
    assert (wm[j] == 0).all() and int((wm == 0).sum()) == 6
    assert bm[j] == 0 and int((bm == 0).sum()) == 1
    assert (model[2].weight_mask == 1).all() and (model[2].bias_mask == 1).all()
    assert rep.units_pruned == 1 and rep.num_units == 11
    assert rep.num_pruned == 7 and rep.num_prunable == 8 * 7 + 3 * 9
    assert rep.mass_removed == 0.0
    assert pruner.scores()["0.weight"].shape == (8,)


def test_cubic_schedule_and_masks_that_accumulate():
    model, G, data = _trained(seed=2)
    steps, target = 4, 0.6
    pruner = KernelPruner(model, G, target_sparsity=target, steps=steps)
    prev = torch.ones(72, dtype=F64)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for t in range(1, 7):
        rep = pruner.step()
        want = target * (1 - (1 - min(t / steps, 1)) ** 3)
        assert rep.target_sparsity == pytest.approx(want)
        assert rep.num_pruned == round(want * 72)
        mask = torch.cat([model[0].weight_mask.reshape(-1), model[2].weight_mask.reshape(-1)])
        assert (mask <= prev).all()  # what is pruned stays pruned
        prev = mask
        X, y = data[t % len(data)]  # training goes on: scores change, masks hold
        out = model(X)
        G.update(X, 0.05, outputs=out)
        opt.zero_grad()
        (0.5 * ((out - y) ** 2).sum() / len(X)).backward()
        opt.step()
        assert (model[0].weight[model[0].weight_mask == 0] == 0).all()
    assert rep.sparsity == pytest.approx(round(target * 72) / 72)


def test_report_mass_and_remove():
    model, G, _ = _trained(seed=4)
    pruner = KernelPruner(model, G, score="obd", include_bias=True)
    rep = pruner.prune_to(0.3)
    diag = G.diagonal()
    mass = sum(float(diag[n][getattr(model[int(n[0])], n[2:] + "_mask") == 0].sum())
               for n in diag)
    assert rep.mass_removed == pytest.approx(mass / G.trace(), rel=1e-12)
    assert 0 < rep.mass_removed < 1
    assert rep.num_prunable == G.num_params  # weights and biases
    assert rep.num_pruned == round(0.3 * G.num_params)
    assert set(rep.per_tensor) == set(diag)
    zeros = int((model[0].weight_mask == 0).sum())
    pruner.remove()
    assert not tprune.is_pruned(model)
    assert int((model[0].weight == 0).sum()) == zeros
    assert isinstance(model[0].weight, nn.Parameter)


def test_layer_scope_gives_every_tensor_the_same_sparsity():
    model, G, _ = _trained(seed=6)
    rep = KernelPruner(model, G, scope="layer", score="obd", tau_rel=0.0).prune_to(0.25)
    assert rep.per_tensor == {"0.weight": 12 / 48, "2.weight": 6 / 24}
    # within the first layer the 16 kernel coordinates are not all needed: 12 of them go
    m0 = model[0].weight_mask
    assert (m0[:, DEAD:] == 1).all() and int((m0 == 0).sum()) == 12
    # within the second layer the 6 lowest OBD saliencies go
    sal = 0.5 * model[2].weight_orig.detach() ** 2 * G.diagonal()["2.weight"]
    assert set(torch.argsort(sal.reshape(-1))[:6].tolist()) == set(
        (model[2].weight_mask.reshape(-1) == 0).nonzero()[:, 0].tolist())


def test_gate_history_multiplies_the_score():
    model, G, _ = _trained(seed=5)

    class FakeSNR:  # the duck-typed interface of hessian.SNRAdamW(gate_ema=...)
        def __init__(self):
            gate = torch.ones(3, 8, dtype=F64)
            gate[1, 2] = gate[0, 7] = 0.0  # never significant
            self.stats = {model[2].weight: gate}

        def gate_statistics(self):
            return self.stats

    pruner = KernelPruner(model, G, gate=FakeSNR(), tau_rel=0.0)
    base = KernelPruner(model, G).scores()
    sc = pruner.scores()
    torch.testing.assert_close(sc["0.weight"], base["0.weight"])
    torch.testing.assert_close(sc["2.weight"], base["2.weight"] * FakeSNR().stats[model[2].weight])
    pruner.prune_to(18 / 72)  # 16 dead coordinates and the 2 closed gates
    m2 = model[2].weight_mask
    assert m2[1, 2] == 0 and m2[0, 7] == 0 and int((m2 == 0).sum()) == 2


def test_with_the_snr_optimizer():
    if not hasattr(hessian, "SNRAdamW"):
        pytest.skip("hessian.SNRAdamW is not available")
    g = torch.Generator().manual_seed(0)
    model = _model(7)
    opt = hessian.SNRAdamW(model.parameters(), lr=1e-2, gate_ema=0.9, warmup=0)
    G = TrajectoryGramian(model, generator=g)
    for X, y in _data(6):
        out = model(X)
        G.update(X, 1e-2, outputs=out)
        opt.zero_grad()
        (0.5 * ((out - y) ** 2).sum() / len(X)).backward()
        opt.step()
    gates = opt.gate_statistics()
    pruner = KernelPruner(model, G, gate=opt)
    sc, base = pruner.scores(), KernelPruner(model, G).scores()
    for i in (0, 2):
        w = model[i].weight
        torch.testing.assert_close(sc[f"{i}.weight"], base[f"{i}.weight"] * gates[w])
    assert pruner.prune_to(0.5).num_pruned == 36


def test_bad_input_is_refused():
    model, G, _ = _trained()
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"target_sparsity must be a real number in \[0, 1\)"):
            KernelPruner(model, G, target_sparsity=bad)
    with pytest.raises(ValueError, match="granularity must be one of"):
        KernelPruner(model, G, granularity="row")
    with pytest.raises(ValueError, match="score must be one of"):
        KernelPruner(model, G, score="l1")
    with pytest.raises(ValueError, match="scope must be one of"):
        KernelPruner(model, G, scope="local")
    with pytest.raises(TypeError, match="TrajectoryGramian"):
        KernelPruner(model, G.diagonal())
    with pytest.raises(ValueError, match="exclude"):
        KernelPruner(model, G, exclude=["head"])
    with pytest.raises(ValueError, match="steps"):
        KernelPruner(model, G, steps=0)
    with pytest.raises(ValueError, match="initial_sparsity"):
        KernelPruner(model, G, target_sparsity=0.2, initial_sparsity=0.5)
    with pytest.raises(ValueError, match="belongs to the model"):
        KernelPruner(_model(9), G)
    with pytest.raises(ValueError, match="nothing to prune"):
        KernelPruner(model, G, granularity="channel")
    empty = TrajectoryGramian(model, generator=0)
    with pytest.raises(ValueError, match="empty"):
        KernelPruner(model, empty).step()
    with pytest.raises(ValueError, match="sparsity"):
        KernelPruner(model, G).prune_to(1.5)
