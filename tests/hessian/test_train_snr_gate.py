"""SNRAdamW against Algorithm 1 as the optimizer theory page states it: the finite-data
threshold b/(n-b), the soft gate (lambda_pop) and the snr gate (softness) on quadratics
with known gradient noise, decoupled ungated decay, and the non-finite gradient check."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from hessian import SNRAdamW
from hessian.training.optim import finite_alpha, momentum_noise

RHO_INF = momentum_noise(0.9, 1e9)  # (1 - beta1) / (1 + beta1)


# ---------------------------------------------------------------------- a NumPy twin
def algorithm1(grads, *, lr, betas=(0.9, 0.999), rho=0.99, eps=1e-8, wd=0.0, gate="hard",
               tau=1.0, alphas=None, warmup=0, theta0=None):
    """Algorithm 1 (docs/theory/optimizer.rst) written out plainly in float64.

    ``grads``: array (T, d) of the gradients fed at each step (they do not depend on the
    parameters, so the twin needs no model). Returns the parameters after each step and
    the gate of each step.
    """
    T, d = grads.shape
    b1, b2 = betas
    th = np.zeros(d) if theta0 is None else theta0.copy()
    m, v, s = np.zeros(d), np.zeros(d), np.zeros(d)
    thetas, gammas = [], []
    for t in range(1, T + 1):
        g = grads[t - 1]
        th = th * (1 - lr * wd)                      # decoupled decay, never gated
        if t > 1:                                    # the momentum *before* the step
            delta = g - m / (1 - b1 ** (t - 1))
            s = rho * s + (1 - rho) * delta**2
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mh, vh = m / (1 - b1**t), v / (1 - b2**t)
        sh = s / (1 - rho ** (t - 1)) if t > 1 else s
        alpha = alphas[t - 1]
        noise = tau * (alpha + momentum_noise(b1, t)) * sh
        if t <= warmup:
            gam = np.ones(d)
        elif gate == "hard":
            gam = (mh**2 > noise).astype(float)
        elif gate == "soft":
            lam_pop = mh**2 - noise                 # unbiased estimate of the squared
            gam = np.maximum(lam_pop, 0) / (mh**2 + eps**2)  # population gradient
        else:  # snr
            gam = mh**2 / (mh**2 + noise + eps**2)
        th = th - lr * gam * mh / (np.sqrt(vh) + eps)
        thetas.append(th.copy())
        gammas.append(gam)
    return np.array(thetas), np.array(gammas)


def _run_torch(grads, batch_sizes=None, foreach=False, **kw):
    w = torch.zeros(grads.shape[1], dtype=torch.float64, requires_grad=True)
    opt = SNRAdamW([w], foreach=foreach, **kw)
    out = []
    for t, g in enumerate(grads):
        w.grad = torch.as_tensor(g)
        if batch_sizes is None:
            opt.step()
        else:
            opt.step(batch_size=batch_sizes[t])
        out.append(w.detach().numpy().copy())
    return np.array(out), opt


@pytest.mark.parametrize("gate", ["hard", "soft", "snr"])
@pytest.mark.parametrize("foreach", [False, True])
def test_matches_algorithm1_twin_with_finite_alpha(gate, foreach):
    """Per-step batch sizes (a short last batch each epoch) give alpha_t = b_t/(n - b_t)."""
    rng = np.random.default_rng(0)
    T, d, n = 60, 400, 1100
    mu = np.linspace(-1.5, 1.5, d)
    grads = mu + rng.normal(size=(T, d))
    sizes = [(256 if t % 5 != 4 else 76) for t in range(T)]  # 4 x 256 + 76 = 1100
    alphas = [b / (n - b) for b in sizes]
    ref, gam = algorithm1(grads, lr=1e-2, wd=0.3, gate=gate, tau=2.0, alphas=alphas,
                          warmup=5)
    got, opt = _run_torch(grads, sizes, foreach, lr=1e-2, weight_decay=0.3, gate=gate,
                          softness=2.0, alpha="finite", num_examples=n, batch_size=256,
                          warmup=5)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert 0.05 < (gam[-1] < 0.5).mean() < 0.95  # the gate really is selective here
    # the constructor's batch_size is the default of a step that names none
    got2, _ = _run_torch(grads[:4], None, foreach, lr=1e-2, weight_decay=0.3, gate=gate,
                         softness=2.0, alpha="finite", num_examples=n, batch_size=256,
                         warmup=0)
    ref2, _ = algorithm1(grads[:4], lr=1e-2, wd=0.3, gate=gate, tau=2.0,
                         alphas=[256 / (n - 256)] * 4)
    np.testing.assert_allclose(got2, ref2, rtol=1e-10, atol=1e-12)


def test_finite_alpha_formula_and_numeric_alpha_agree():
    assert finite_alpha(512, 2328) == 512 / (2328 - 512)
    assert finite_alpha(1, 2) == 1.0
    rng = np.random.default_rng(1)
    grads = 0.3 + rng.normal(size=(30, 50))
    a, _ = _run_torch(grads, [64] * 30, lr=1e-2, gate="hard", alpha="finite",
                      num_examples=1000, warmup=3)
    b, _ = _run_torch(grads, None, lr=1e-2, gate="hard", alpha=64 / 936, warmup=3)
    np.testing.assert_array_equal(a, b)


def test_weight_decay_is_decoupled_and_not_gated():
    """A coordinate whose gate is shut is moved by the decay alone: theta (1 - lr wd)."""
    rng = np.random.default_rng(2)
    grads = rng.normal(size=(40, 300))  # pure noise: the strict gate shuts almost all
    theta0 = np.ones(300)
    ref, gam = algorithm1(grads, lr=1e-2, wd=0.5, gate="hard", alphas=[1.0] * 40,
                          warmup=10, theta0=theta0)
    w = torch.ones(300, dtype=torch.float64, requires_grad=True)
    opt = SNRAdamW([w], lr=1e-2, weight_decay=0.5, gate="hard", alpha=1.0, warmup=10)
    for t, g in enumerate(grads):
        before = w.detach().clone()
        w.grad = torch.as_tensor(g)
        opt.step()
        if t >= 10:
            shut = torch.as_tensor(gam[t] == 0)
            assert int(shut.sum()) > 250
            torch.testing.assert_close(w.detach()[shut], before[shut] * (1 - 1e-2 * 0.5),
                                       rtol=0, atol=1e-15)
    np.testing.assert_allclose(w.detach().numpy(), ref[-1], rtol=1e-10)


def test_variance_ema_uses_momentum_before_the_step():
    """Two steps, beta1 = 0.5: s_2 = (1 - rho) (g_2 - m_hat_1)^2 with m_hat_1 = g_1."""
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = SNRAdamW([w], lr=0.0, betas=(0.5, 0.9), rho=0.8, gate="hard", warmup=0)
    for g in (3.0, 7.0):
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
    s = float(opt.state[w]["grad_var"])
    assert math.isclose(s, 0.2 * (7.0 - 3.0) ** 2, rel_tol=1e-14)  # not (7 - 5)^2


# ---------------------------------------------------------------------- known noise
def _stationary_gates(gate, tau, alpha, mu, steps=600, seed=0):
    """Fresh N(mu, 1) gradients, lr = 0: the applied gate at each step after warm-up."""
    rng = np.random.default_rng(seed)
    d = mu.size
    grads = mu + rng.normal(size=(steps, d))
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    opt = SNRAdamW([w], lr=1e-300, weight_decay=0.0, gate=gate, softness=tau, alpha=alpha,
                   warmup=200, gate_ema=1e-12)  # gate_avg = this step's gate
    gates = []
    for t, g in enumerate(grads):
        w.grad = torch.as_tensor(g)
        opt.step()
        if t >= 300:
            gates.append(opt.state[w]["gate_avg"].numpy().copy())
    return np.array(gates)


def _model_gate(gate, kappa, mu, draws=200_000, seed=5):
    """The gate's law from the known noise: m_hat ~ N(mu, rho sigma^2), s_hat ~ (1 + rho)
    sigma^2 (the deviation from the previous mean carries that mean's noise too)."""
    rng = np.random.default_rng(seed)
    m = mu + math.sqrt(RHO_INF) * rng.normal(size=draws)
    x, n = m * m, kappa * (1 + RHO_INF)
    if gate == "soft":
        return np.maximum(x - n, 0) / x
    return x / (x + n)


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_soft_gate_is_positive_part_of_lambda_pop(tau):
    """gamma = max(0, lambda_pop) / m_hat^2, lambda_pop = m_hat^2 - kappa s_hat."""
    mus = np.repeat([0.0, 0.3, 0.6, 1.5], 500)
    G = _stationary_gates("soft", tau, 1.0, mus)
    kappa = tau * (1.0 + RHO_INF)
    for mu in (0.0, 0.3, 0.6, 1.5):
        got = G[:, mus == mu]
        expect = _model_gate("soft", kappa, mu)
        # the mean gate and the fraction exactly zero (below the boundary)
        assert abs(got.mean() - expect.mean()) < 0.03 + 0.1 * expect.mean(), (mu, tau)
        shut = got < 1e-9  # gate_avg keeps 1e-12 of its previous value
        assert abs(shut.mean() - (expect == 0).mean()) < 0.03, (mu, tau)
    # a null coordinate is (almost) never updated with the fresh-batch threshold
    assert (G[:, mus == 0] > 1e-9).mean() < chi2.sf(kappa * (1 + RHO_INF) / RHO_INF, 1) + 0.005


@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_snr_gate_is_wiener_factor_with_softness(tau):
    """gamma = m_hat^2 / (m_hat^2 + tau (alpha + rho) s_hat): never zero, falls with tau."""
    mus = np.repeat([0.0, 0.3, 1.0], 500)
    G = _stationary_gates("snr", tau, 0.0, mus)
    assert G.min() > 0.0
    kappa = tau * RHO_INF
    for mu in (0.0, 0.3, 1.0):
        got = G[:, mus == mu].mean()
        expect = _model_gate("snr", kappa, mu).mean()
        assert abs(got - expect) < 0.03 + 0.1 * expect, (mu, tau, got, expect)


def test_finite_threshold_on_a_fixed_dataset():
    """Batches without replacement from n examples: the gate with alpha = b/(n-b) opens a
    coordinate whose full-data gradient vanishes about as often as chi2_1 exceeds its
    threshold, and keeps coordinates with a clear full-data gradient open."""
    rng = np.random.default_rng(3)
    n, b, d, T = 2000, 200, 1000, 900
    X = rng.normal(size=(n, d))
    X -= X.mean(0)                        # full-data mean exactly 0 ...
    X[:, d // 2:] += 0.5                  # ... except for the second half
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    opt = SNRAdamW([w], lr=1e-300, weight_decay=0.0, gate="hard", alpha="finite",
                   num_examples=n, batch_size=b, warmup=200)
    opens, order, pos = [], rng.permutation(n), 0
    for t in range(T):
        if pos + b > n:
            order, pos = rng.permutation(n), 0
        w.grad = torch.as_tensor(X[order[pos:pos + b]].mean(0))
        pos += b
        opt.step()
        if t >= 300:
            m = opt.state[w]["exp_avg"].numpy() / (1 - 0.9 ** (t + 1))
            s = opt.state[w]["grad_var"].numpy() / (1 - 0.99**t)
            opens.append(m**2 > (b / (n - b) + RHO_INF) * s)
    opens = np.array(opens)
    frac_null, frac_sig = opens[:, : d // 2].mean(), opens[:, d // 2:].mean()
    assert frac_sig > 0.99
    # a closed-form law of m_hat^2 / s_hat needs the within-epoch correlations; bound it
    # between the i.i.d. model (looser) and zero, and check the gate is selective
    iid = chi2.sf((b / (n - b) + RHO_INF) * (1 + RHO_INF) / RHO_INF, 1)
    assert frac_null < iid + 0.02
    assert frac_null < 0.05
    np.testing.assert_allclose(opt.gate_fraction()[0], opens[-1].mean(), atol=1e-12)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, match", [
    ({"alpha": "finite"}, "needs num_examples"),
    ({"alpha": "finite", "num_examples": 100, "batch_size": 100}, "below num_examples"),
    ({"alpha": "finite", "num_examples": 100, "batch_size": 0}, "batch_size"),
    ({"alpha": "finite", "num_examples": 1}, "num_examples"),
    ({"alpha": "fresh"}, "alpha"),
    ({"alpha": 1.0, "num_examples": 100}, "only with alpha='finite'"),
    ({"alpha": 0.0, "batch_size": 10}, "only with alpha='finite'"),
])
def test_finite_alpha_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        SNRAdamW([torch.zeros(3, requires_grad=True)], **kw)


def test_finite_alpha_needs_a_batch_size_at_step():
    w = torch.zeros(3, requires_grad=True)
    opt = SNRAdamW([w], alpha="finite", num_examples=100)
    w.grad = torch.ones(3)
    with pytest.raises(ValueError, match=r"step\(batch_size=b\)"):
        opt.step()
    with pytest.raises(ValueError, match="below num_examples"):
        opt.step(batch_size=100)
    with pytest.raises(TypeError, match="batch_size"):
        opt.step(batch_size=2.5)
    assert not opt.state  # nothing was updated by the refused steps
    opt.step(batch_size=10)
    assert int(opt.state[w]["step"]) == 1


# ---------------------------------------------------------------------- non-finite gradients
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_check_finite_skips_step_and_keeps_weights(foreach, bad):
    w = torch.ones(4, requires_grad=True)
    u = torch.ones(2, requires_grad=True)
    opt = SNRAdamW([w, u], lr=0.1, check_finite=True, foreach=foreach, warmup=0)
    w.grad, u.grad = torch.ones(4), torch.ones(2)
    opt.step()
    before = [w.detach().clone(), u.detach().clone()]
    state = {k: v.clone() for k, v in opt.state[w].items()}
    w.grad = torch.tensor([1.0, bad, 1.0, 1.0])
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        opt.step()
    assert torch.equal(w.detach(), before[0]) and torch.equal(u.detach(), before[1])
    assert all(torch.equal(v, opt.state[w][k]) for k, v in state.items())
    assert opt.skipped_steps == 1
    w.grad = torch.ones(4)
    opt.step()
    assert torch.isfinite(w).all() and int(opt.state[w]["step"]) == 2


def test_check_finite_refuses_non_bool():
    with pytest.raises(TypeError, match="check_finite"):
        SNRAdamW([torch.zeros(2, requires_grad=True)], check_finite="yes")
