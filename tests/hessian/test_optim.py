"""SNRAdamW: AdamW equivalence, gate behaviour on known signal/noise, state, bad input."""

import copy
import io
import math

import numpy as np
import pytest
import torch

from hessian import SNRAdamW
from hessian.training.optim import GATES, leave_one_out_signal, momentum_noise


def _model(seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return m


def _train(model, opt, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=g)
        y = torch.randn(16, 3, generator=g)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------------- AdamW equivalence
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("extra", [{}, {"amsgrad": True}, {"maximize": True}])
def test_gate_none_is_adamw_bitwise(foreach, wd, extra):
    kw = dict(lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd, foreach=foreach, **extra)
    m = _model()
    ref = _train(m, torch.optim.AdamW(m.parameters(), **kw), 7)
    m = _model()
    out = _train(m, SNRAdamW(m.parameters(), gate=None, **kw), 7)
    assert all(torch.equal(a, b) for a, b in zip(ref, out, strict=True))
    # the same during the warm-up of an enabled gate (held open: no rounding difference)
    m = _model()
    out = _train(m, SNRAdamW(m.parameters(), gate="hard", warmup=7, **kw), 7)
    assert all(torch.equal(a, b) for a, b in zip(ref, out, strict=True))


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("reduction", [None, "per_tensor"])
@pytest.mark.parametrize("gwd", [False, True])
def test_foreach_matches_single(gate, reduction, gwd):
    kw = dict(lr=1e-2, weight_decay=0.1, gate=gate, reduction=reduction, warmup=3,
              gate_weight_decay=gwd, gate_ema=0.9, alpha=0.0)
    outs = []
    for fe in (False, True):
        m = _model()
        opt = SNRAdamW(m.parameters(), foreach=fe, **kw)
        outs.append((_train(m, opt, 12), opt.gate_fraction(),
                     [t.clone() for t in opt.gate_statistics().values()]))
    (p1, f1, s1), (p2, f2, s2) = outs
    for a, b in zip(p1 + s1, p2 + s2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert f1 == f2
    if reduction == "per_tensor":
        return
    m = _model()
    adamw = _train(m, torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1), 12)
    assert not all(torch.equal(a, b) for a, b in zip(p1, adamw, strict=True))


def test_sigmoid_at_unit_temperature_is_snr_gate():
    outs = []
    for kw in ({"gate": "snr"}, {"gate": "sigmoid", "temperature": 1.0}):
        m = _model()
        outs.append(_train(m, SNRAdamW(m.parameters(), lr=1e-2, warmup=2, eps=0.0,
                                       **kw), 10))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- the gate's statistics
def _noisy_quadratic(opt_kw, steps=400, d=3000, sigma=1.0, seed=0):
    """Loss 1/2 sum c (w - w*)^2 with N(0, sigma^2) gradient noise; two parameter groups:
    w* = 0 (no signal: the true gradient mean vanishes at w = 0) and w* = 50 (signal)."""
    g = torch.Generator().manual_seed(seed)
    null = torch.zeros(d, requires_grad=True)
    sig = torch.zeros(d, requires_grad=True)
    opt = SNRAdamW([{"params": [null]}, {"params": [sig]}], **opt_kw)
    fracs = []
    for _ in range(steps):
        null.grad = null.detach() + sigma * torch.randn(d, generator=g)
        sig.grad = (sig.detach() - 50.0) + sigma * torch.randn(d, generator=g)
        opt.step()
        fracs.append(opt.gate_fraction())
    return opt, null, sig, np.array(fracs)


def test_hard_gate_closes_on_noise_and_opens_on_signal():
    kw = dict(lr=1e-3, weight_decay=0.0, gate="hard", alpha=1.0, gate_ema=0.95)
    opt, null, sig, fr = _noisy_quadratic(kw)
    assert np.all(fr[:100] == 1.0)  # warm-up: held open
    after = fr[150:]
    # alpha = 1: a null coordinate passes when chi2_1 > (1 + rho)/rho ~ 20: P ~ 1e-5
    assert after[:, 0].mean() < 0.002
    assert after[:, 1].min() > 0.99
    stats = opt.gate_statistics()
    assert float(stats[null].mean()) < 0.01 and float(stats[sig].mean()) > 0.99
    # never systematically updated: the null coordinates stay where the warm-up left them
    # while the signal ones keep moving towards w* = 50
    w_warm = _noisy_quadratic(kw, steps=100)[1].detach()
    assert float((null.detach() - w_warm).abs().max()) < 1e-3 * 10
    assert float(sig.detach().mean()) > 0.35


def test_momentum_calibrated_gate_matches_chi2_tail():
    """alpha = 0: the gate tests the momentum's own noise, so on a null coordinate it is
    open with probability P(chi2_1 > tau * (1 + rho(beta1)))."""
    for tau in (1.0, 3.0):
        kw = dict(lr=1e-4, weight_decay=0.0, gate="hard", alpha=0.0, softness=tau)
        _, _, _, fr = _noisy_quadratic(kw, steps=500, d=2000, seed=3)
        rho = momentum_noise(0.9, 1e9)
        # s-hat also carries the previous mean's noise: E[s] = (1 + rho) sigma^2
        from scipy.stats import chi2

        expect = chi2.sf(tau * (1.0 + rho), 1)
        got = fr[200:, 0].mean()
        assert abs(got - expect) < 0.04, (tau, got, expect)
        assert fr[200:, 1].min() > 0.99


def test_gated_weight_decay_freezes_closed_coordinates():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(500, generator=g).requires_grad_()
    opt = SNRAdamW([w], lr=1e-2, weight_decay=0.5, gate="hard", warmup=20,
                   gate_weight_decay=True)
    for t in range(60):
        w.grad = 0.05 * w.detach() + torch.randn(500, generator=g)
        before = w.detach().clone()
        opt.step()
        moved = int((w.detach() != before).sum())
        if t >= 20:
            assert moved == round(opt.gate_fraction()[0] * 500)
    assert opt.gate_fraction()[0] < 0.5  # the noise dominates: most coordinates frozen


def test_ungated_weight_decay_shrinks_closed_coordinates():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(500, generator=g).requires_grad_()
    opt = SNRAdamW([w], lr=1e-2, weight_decay=0.5, gate="hard", alpha=1.0, warmup=20)
    for _ in range(40):
        w.grad = torch.randn(500, generator=g)
        before = w.detach().clone()
        opt.step()
    closed = (w.detach() / before)
    # every coordinate was decayed by 1 - lr * wd, closed ones by exactly that
    assert float(closed.abs().max()) <= 1.0 + 1e-3
    decayed_only = (closed - (1 - 1e-2 * 0.5)).abs() < 1e-6
    assert int(decayed_only.sum()) > 450


def test_per_tensor_gate_is_constant_within_a_tensor():
    m = _model()
    opt = SNRAdamW(m.parameters(), lr=1e-2, gate="snr", reduction="per_tensor", warmup=2,
                   gate_ema=0.5)
    _train(m, opt, 8)
    for t in opt.gate_statistics().values():
        assert float(t.max() - t.min()) < 1e-6
        assert 0.0 < float(t.mean()) < 1.0


# ---------------------------------------------------------------------- the leave-one-out identity
def test_leave_one_out_identity_exact():
    g = torch.Generator().manual_seed(0)
    G = torch.randn(9, 4, 3, generator=g, dtype=torch.float64) + 0.3
    b = G.shape[0]
    pair = (G.sum(0) ** 2 - (G**2).sum(0)) / (b * (b - 1))  # sum over i != j of g_i g_j
    explicit = sum(G[i] * G[j] for i in range(b) for j in range(b) if i != j) / (b * (b - 1))
    torch.testing.assert_close(pair, explicit, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(leave_one_out_signal(G), explicit, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_signal(G[:1])


def test_temporal_variance_estimates_leave_one_out_penalty():
    """With fresh batches, s-hat matches E[sigma_B^2] / (b - 1): the identity's penalty."""
    gen = torch.Generator().manual_seed(1)
    b, d, T = 8, 2000, 400
    scale = torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    opt = SNRAdamW([w], lr=0.0, weight_decay=0.0, gate="hard", betas=(0.0, 0.999),
                   rho=0.99)
    penalty = torch.zeros(d, dtype=torch.float64)
    for _ in range(T):
        G = 1.0 + scale * torch.randn(b, d, generator=gen, dtype=torch.float64)
        w.grad = G.mean(0)
        penalty += (G.var(0, correction=0) / (b - 1)) / T
        opt.step()
    st = opt.state[w]
    s_hat = st["grad_var"] / (1 - 0.99 ** (T - 1))
    # beta1 = 0: the previous "mean" is the previous batch mean, so E[delta^2] = 2 Var
    ratio = (s_hat / 2) / penalty
    assert abs(float(ratio.mean()) - 1.0) < 0.03
    # and the U-statistic of each batch averages to mu^2 = 1
    U = torch.stack([leave_one_out_signal(1.0 + scale * torch.randn(b, d, generator=gen,
                                                                   dtype=torch.float64))
                     for _ in range(50)]).mean()
    assert abs(float(U) - 1.0) < 0.05


def test_momentum_noise_formula():
    for beta in (0.5, 0.9, 0.98):
        for t in (1, 2, 7, 50):
            w = (1 - beta) * beta ** np.arange(t) / (1 - beta**t)
            assert math.isclose(momentum_noise(beta, t), float((w**2).sum()), rel_tol=1e-12)
        assert math.isclose(momentum_noise(beta, 1e6), (1 - beta) / (1 + beta))
    assert momentum_noise(0.0, 5) == 1.0


# ---------------------------------------------------------------------- state, logging
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_round_trip_continues_identically(foreach):
    kw = dict(lr=1e-2, gate="soft", warmup=3, gate_ema=0.9, amsgrad=True, foreach=foreach)
    m1 = _model()
    o1 = SNRAdamW(m1.parameters(), **kw)
    _train(m1, o1, 6)
    buf = io.BytesIO()
    torch.save({"model": m1.state_dict(), "opt": o1.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    m2 = _model(seed=5)
    m2.load_state_dict(saved["model"])
    o2 = SNRAdamW(m2.parameters(), **kw)
    o2.load_state_dict(saved["opt"])
    assert set(o2.state[next(m2.parameters())]) == {
        "step", "exp_avg", "exp_avg_sq", "grad_var", "max_exp_avg_sq", "gate_avg"}
    a = _train(m1, o1, 6, seed=7)
    b = _train(m2, o2, 6, seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert o1.gate_fraction() == o2.gate_fraction()


def test_gate_fraction_and_statistics():
    m = _model()
    opt = SNRAdamW(m.parameters(), lr=1e-2, gate="hard", warmup=4)
    assert opt.gate_fraction() == [1.0]
    _train(m, opt, 3)
    assert opt.gate_fraction() == [1.0]  # held open
    _train(m, opt, 10)
    f = opt.gate_fraction()[0]
    assert 0.0 <= f < 1.0
    with pytest.raises(RuntimeError, match="gate_ema"):
        opt.gate_statistics()


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, match", [
    ({"lr": -1e-3}, "lr must be a real number >= 0"),
    ({"betas": (1.0, 0.9)}, r"betas\[0\] must be a real number in \[0, 1\)"),
    ({"betas": (0.9, -0.1)}, r"betas\[1\] must be a real number in \[0, 1\)"),
    ({"betas": 0.9}, "pair"),
    ({"rho": 1.0}, r"rho must be a real number in \[0, 1\)"),
    ({"gate": "bogus"}, "gate must be one of .*'snr'.*'soft'.*'hard'.*'sigmoid'"),
    ({"reduction": "mean"}, "per_tensor"),
    ({"softness": 0.0}, "softness must be a real number > 0"),
    ({"warmup": -1}, "warmup"),
    ({"gate_ema": 1.0}, "gate_ema"),
    ({"eps": float("nan")}, "eps must be a real number >= 0, got nan"),
    ({"weight_decay": -0.1}, "weight_decay must be a real number >= 0"),
])
def test_bad_hyperparameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        SNRAdamW(_model().parameters(), **kw)


def test_bad_types_raise():
    with pytest.raises(TypeError, match="lr must be a real number"):
        SNRAdamW(_model().parameters(), lr="0.1")
    with pytest.raises(TypeError, match="complex"):
        SNRAdamW([torch.zeros(3, dtype=torch.complex64, requires_grad=True)])
    with pytest.raises(TypeError, match="gate_weight_decay"):
        SNRAdamW(_model().parameters(), gate_weight_decay="yes")


def test_sparse_gradient_refused():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = SNRAdamW(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


def test_param_groups_take_their_own_options():
    m = _model()
    opt = SNRAdamW([{"params": m[0].parameters(), "gate": None},
                    {"params": m[2].parameters(), "gate": "hard"}], lr=1e-2, warmup=1)
    _train(m, opt, 5)
    assert "grad_var" not in opt.state[m[0].weight]
    assert "grad_var" in opt.state[m[2].weight]
    assert opt.gate_fraction()[0] == 1.0
    with pytest.raises(ValueError, match="gate must be one of"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "gate": "x"})
    assert copy.deepcopy(opt.state_dict())["param_groups"][1]["gate"] == "hard"
