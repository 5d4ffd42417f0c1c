"""SpectralLR: curvature tracking on models with known Hessians, thresholds, clipping."""

import math

import numpy as np
import pytest
import torch

from hessian import SNRAdamW, SpectralLR

DT = torch.float64


class Quadratic(torch.nn.Module):
    """Outputs its parameter; the loss 1/2 w^T A w then has Hessian A."""

    def __init__(self, w0):
        super().__init__()
        self.w = torch.nn.Parameter(w0.clone())

    def forward(self, x):
        return self.w


def quad_loss(A):
    def loss(out, target):
        return 0.5 * out @ (A @ out)

    return loss


class Quartic(torch.nn.Module):
    """Loss 1/4 sum a_k w_k^4: Hessian diag(3 a_k w_k^2), which moves with w."""

    def __init__(self, w0):
        super().__init__()
        self.w = torch.nn.Parameter(w0.clone())

    def forward(self, x):
        return self.w


def quartic_loss(a):
    def loss(out, target):
        return 0.25 * (a * out**4).sum()

    return loss


DATA = (torch.zeros(1, 1, dtype=DT), torch.zeros(1, dtype=DT))


def _spd(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    lam = torch.linspace(0.1, 4.0, n, dtype=DT)
    return Q @ torch.diag(lam) @ Q.T, lam


def test_sgd_rate_is_factor_times_two_over_lambda():
    A, lam = _spd(12)
    model = Quadratic(torch.ones(12, dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    sched = SpectralLR(opt, model, quad_loss(A), DATA, every=5, factor=0.5, num_steps=12,
                       rng=0)
    rec = sched.history[0]
    assert rec.step == 0
    assert math.isclose(rec.ritz, float(lam[-1]), rel_tol=1e-10)
    assert rec.upper >= rec.ritz - 1e-12
    assert math.isclose(sched.get_last_lr()[0], 0.5 * 2.0 / float(lam[-1]), rel_tol=1e-10)
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]


def test_heavy_ball_threshold():
    A, lam = _spd(8)
    model = Quadratic(torch.ones(8, dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=10.0, momentum=0.9)
    sched = SpectralLR(opt, model, quad_loss(A), DATA, factor=1.0, num_steps=8, rng=0)
    assert math.isclose(sched.get_last_lr()[0], (2 + 2 * 0.9) / float(lam[-1]), rel_tol=1e-10)


def test_tracks_a_moving_curvature_without_stale_graphs():
    """The Hessian of the quartic changes every step: each measurement must see the
    current parameters (a cached graph from before an optimizer step would not)."""
    g = torch.Generator().manual_seed(1)
    a = torch.rand(20, generator=g, dtype=DT) + 0.5
    model = Quartic(torch.randn(20, generator=g, dtype=DT) * 2)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    sched = SpectralLR(opt, model, quartic_loss(a), DATA, every=3, factor=0.5, num_steps=20,
                       smoothing=0.0, max_change=math.inf, rng=0)
    seen = []
    for t in range(1, 16):
        opt.zero_grad()
        quartic_loss(a)(model(None), None).backward()
        opt.step()
        sched.step()
        if t % 3 == 0:
            truth = float((3 * a * model.w.detach() ** 2).max())
            rec = sched.history[-1]
            assert rec.step == t
            assert math.isclose(rec.ritz, truth, rel_tol=1e-8), (t, rec.ritz, truth)
            assert math.isclose(sched.get_last_lr()[0], 1.0 / truth, rel_tol=1e-8)
            seen.append(truth)
    assert len(sched.history) == 6  # step 0 and every 3 steps
    assert max(seen) / min(seen) > 1.05  # the curvature did move


def test_adam_threshold_on_known_preconditioner():
    A, _ = _spd(10, seed=2)
    for cls in (torch.optim.Adam, SNRAdamW):
        model = Quadratic(torch.linspace(-1, 1, 10, dtype=DT))
        opt = cls(model.parameters(), lr=1e-2, betas=(0.8, 0.99), eps=1e-3)
        loss_fn = quad_loss(A)
        # small steps first (a known, slowly moving D), then a schedule far above the cap
        sched = SpectralLR(opt, model, loss_fn, DATA, every=4, factor=0.5, num_steps=10,
                           smoothing=0.0, max_change=math.inf, rng=0,
                           base=lambda t: 1.0 if t < 4 else 1e6)
        assert sched.history == []  # no Adam state yet: measured after the first step
        for _ in range(4):
            opt.zero_grad()
            loss_fn(model(None), None).backward()
            opt.step()
            sched.step()
        st = opt.state[model.w]
        D = (st["exp_avg_sq"] / (1 - 0.99 ** float(st["step"]))).sqrt() + 1e-3
        S = torch.diag(D.rsqrt())
        lam_p = float(torch.linalg.eigvalsh(S @ A @ S)[-1])
        rec = sched.history[-1]
        assert rec.step == 4
        assert math.isclose(rec.ritz, lam_p, rel_tol=1e-8)
        expect = 0.5 * (2 + 2 * 0.8) / ((1 - 0.8) * lam_p)
        assert math.isclose(sched.get_last_lr()[0], expect, rel_tol=1e-8)


def _jump_run(smoothing, max_change):
    """Measure, scale the quartic's parameters by sqrt(10) (curvature x 10), measure."""
    a = torch.ones(6, dtype=DT)
    model = Quartic(torch.tensor([1.0, 0.5, 0.2, -0.3, 0.1, 0.7], dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    sched = SpectralLR(opt, model, quartic_loss(a), DATA, every=1, factor=0.5, num_steps=6,
                       smoothing=smoothing, max_change=max_change, rng=0)
    with torch.no_grad():
        model.w.mul_(math.sqrt(10.0))
    sched.step()
    return sched


def test_clipping_limits_each_change():
    h = _jump_run(0.0, 2.0).history
    assert math.isclose(h[1].ritz / h[0].ritz, 10.0, rel_tol=1e-8)
    assert math.isclose(h[1].cap, h[0].cap / 2.0, rel_tol=1e-12)  # not / 10
    h = _jump_run(0.0, math.inf).history
    assert math.isclose(h[1].cap, h[0].cap / 10.0, rel_tol=1e-8)


def test_smoothing_is_an_ema_of_log_lambda():
    h = _jump_run(0.5, math.inf).history
    expect = math.exp(0.5 * math.log(h[0].ritz) + 0.5 * math.log(h[1].ritz))
    assert math.isclose(h[1].smoothed, expect, rel_tol=1e-12)
    assert math.isclose(h[1].cap, 0.5 * 2.0 / expect, rel_tol=1e-12)


def test_base_schedule_caps_and_composes():
    A, lam = _spd(6)
    model = Quadratic(torch.ones(6, dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    cap = 1.0 / float(lam[-1])
    sched = SpectralLR(opt, model, quad_loss(A), DATA, base=lambda t: 0.5**t, every=100,
                       num_steps=6, rng=0)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [min(0.5**t, cap) for t in range(5)], rtol=1e-10)
    # a torch scheduler as the base: stepped by SpectralLR, uncapped internally
    model = Quadratic(torch.ones(6, dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    sched = SpectralLR(opt, model, quad_loss(A), DATA, base=step_lr, every=100,
                       num_steps=6, rng=0)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(4):
        opt.step()  # (no gradients: nothing moves) keeps torch's step-order check quiet
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [min(0.1 ** (t // 2), cap) for t in range(5)], rtol=1e-10)


def test_nan_stops_with_the_step_number():
    a = torch.ones(4, dtype=DT)
    model = Quartic(torch.ones(4, dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = SpectralLR(opt, model, quartic_loss(a), DATA, every=1, num_steps=4, rng=0)
    sched.step()
    with torch.no_grad():
        model.w[2] = float("nan")
    with pytest.raises(FloatingPointError, match="scheduler step 2"):
        sched.step()


def test_state_dict_round_trip():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(10, generator=g, dtype=DT) + 0.5
    w0 = torch.randn(10, generator=g, dtype=DT)
    runs = []
    for reload in (False, True):
        model = Quartic(w0)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        sched = SpectralLR(opt, model, quartic_loss(a), DATA, every=2, num_steps=5, rng=0)
        for t in range(8):
            if reload and t == 4:
                state, ostate = sched.state_dict(), opt.state_dict()
                model = Quartic(model.w.detach())
                opt = torch.optim.SGD(model.parameters(), lr=123.0)
                opt.load_state_dict(ostate)
                sched = SpectralLR(opt, model, quartic_loss(a), DATA, every=2, num_steps=5,
                                   rng=99)
                sched.load_state_dict(state)
            opt.zero_grad()
            quartic_loss(a)(model(None), None).backward()
            opt.step()
            sched.step()
        runs.append(([r.ritz for r in sched.history], model.w.detach().clone()))
    np.testing.assert_allclose(runs[0][0][-3:], runs[1][0][-3:], rtol=1e-12)
    assert torch.equal(runs[0][1], runs[1][1])


def test_eval_mode_during_measurement_and_restored():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5),
                                torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(DT)
    X = torch.randn(32, 3, generator=g, dtype=DT)
    y = torch.randn(32, 1, generator=g, dtype=DT)
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    model.train()
    sched = SpectralLR(opt, model, torch.nn.MSELoss(), (X, y), num_steps=10, rng=0)
    assert model.training and model[1].training
    assert 0 < sched.get_last_lr()[0] < 5.0


@pytest.mark.parametrize("kw, err, match", [
    ({"every": 0}, ValueError, "every must be an integer >= 1"),
    ({"factor": 1.5}, ValueError, r"factor must be a real number in \(0, 1\]"),
    ({"smoothing": 1.0}, ValueError, r"smoothing must be a real number in \[0, 1\)"),
    ({"max_change": 0.5}, ValueError, "max_change must be a real number >= 1"),
    ({"num_steps": 0}, ValueError, "num_steps"),
    ({"base": 3}, TypeError, "base must be None, a callable"),
    ({"preconditioned": True}, ValueError, "Adam-type"),
])
def test_bad_arguments(kw, err, match):
    A, _ = _spd(4)
    model = Quadratic(torch.ones(4, dtype=DT))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(err, match=match):
        SpectralLR(opt, model, quad_loss(A), DATA, **kw)


def test_unsupported_optimizers():
    A, _ = _spd(4)
    model = Quadratic(torch.ones(4, dtype=DT))
    with pytest.raises(TypeError, match="SGD and of Adam-type"):
        SpectralLR(torch.optim.RMSprop(model.parameters()), model, quad_loss(A), DATA)
    with pytest.raises(ValueError, match="Nesterov"):
        SpectralLR(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True),
                   model, quad_loss(A), DATA)
