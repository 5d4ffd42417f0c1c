"""TrajectoryGramian and DissipationGramian against dense float64 references."""

from __future__ import annotations

import math

import pytest
import torch
from hessian_refs import Dense, mlp
from torch import nn

import hessian
from hessian.training.dissipation import DissipationGramian
from hessian.training.trajectory import TrajectoryGramian

F64 = torch.float64


def _batches(T: int, n: int, d: int = 4, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, 3, generator=g, dtype=F64))
            for _ in range(T)]


def _sq_loss(out, y):
    return 0.5 * ((out - y) ** 2).sum() / out.shape[0]


def _train(model, batches, lr, gramians=(), on_step=None):
    """SGD on the half mean squared error; every Gramian is updated before each step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for t, (X, y) in enumerate(batches):
        if on_step is not None:
            on_step(t, X)
        out = model(X)
        for G in gramians:
            G.update(X, lr, outputs=out)
        opt.zero_grad()
        _sq_loss(out, y).backward()
        opt.step()


def _dense_gramian(model, X, lr, normalize="mean"):
    J = Dense(model).jacobian(X)
    return lr / (len(X) if normalize == "mean" else 1.0) * J.T @ J


# ---------------------------------------------------------------------- diagonal
def test_diagonal_exact_for_one_scalar_output():
    # one sample, one output: (J^T u)^2 = J^2 for u = +-1, so every update is exact
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    G = TrajectoryGramian(model, generator=g)
    ref = torch.zeros(G.num_params, dtype=F64)
    for t in range(3):
        X = torch.randn(1, 3, generator=g, dtype=F64)
        ref += torch.diagonal(_dense_gramian(model, X, 0.1 * (t + 1)))
        G.update(X, 0.1 * (t + 1))
        with torch.no_grad():
            model[0].weight.add_(0.05)  # move along a trajectory
    torch.testing.assert_close(G.diagonal(flat=True), ref, rtol=1e-12, atol=1e-15)
    assert G.total_weight == pytest.approx(0.6) and G.num_updates == 3


def test_diagonal_converges_to_the_exact_accumulated_diagonal():
    model = mlp(0)
    batches = _batches(T=4, n=5)
    few = TrajectoryGramian(model, num_probes=4, generator=1)
    many = TrajectoryGramian(model, num_probes=512, generator=2)
    ref = torch.zeros(few.num_params, dtype=F64)

    def dense(t, X):
        nonlocal ref
        ref = ref + torch.diagonal(_dense_gramian(model, X, 0.05))

    _train(model, batches, 0.05, (few, many), on_step=dense)
    err = [float(torch.linalg.vector_norm(G.diagonal(flat=True) - ref)
                 / torch.linalg.vector_norm(ref)) for G in (few, many)]
    # relative RMS error <= sqrt(2 / m): 0.71 for m = 4, 0.063 for m = 512
    assert err[1] < 0.15
    assert err[1] < err[0] / 3
    assert many.trace() == pytest.approx(float(ref.sum()), rel=0.05)


def test_normalize_and_weight_scale_exactly():
    model = mlp(1)
    X = _batches(1, n=6)[0][0]
    a = TrajectoryGramian(model, num_probes=3, generator=7)
    b = TrajectoryGramian(model, num_probes=3, generator=7, normalize="sum")
    c = TrajectoryGramian(model, num_probes=3, generator=7)
    a.update(X, 0.1)
    b.update(X, 0.1)
    c.update(X, 0.3)
    da, db, dc = (G.diagonal(flat=True) for G in (a, b, c))
    assert float(da.abs().max()) > 0
    torch.testing.assert_close(db, 6 * da, rtol=1e-12, atol=0)
    torch.testing.assert_close(dc, 3 * da, rtol=1e-12, atol=0)


def test_outputs_of_the_training_pass_are_reused_and_the_graph_is_kept():
    model = mlp(2)
    X, y = _batches(1, n=4)[0]
    a = TrajectoryGramian(model, num_probes=2, sketch_rank=3, generator=3)
    b = TrajectoryGramian(model, num_probes=2, sketch_rank=3, generator=3)
    a.update(X, 0.1)
    out = model(X)
    b.update(X, 0.1, outputs=out)
    _sq_loss(out, y).backward()  # the caller's backward still works
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    _sq_loss(model(X), y).backward()
    for g1, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(g1, p.grad)  # update() added nothing to .grad
    torch.testing.assert_close(a.diagonal(flat=True), b.diagonal(flat=True))
    torch.testing.assert_close(a.nystrom().eigenvalues, b.nystrom().eigenvalues)


def test_group_energy_is_the_row_sum_plus_bias():
    model = mlp(3)
    G = TrajectoryGramian(model, num_probes=2, generator=0)
    G.update(_batches(1, n=4)[0][0], 0.2)
    d = G.diagonal()
    e = G.group_energy("neuron")
    assert set(e) == {"0", "2"}
    torch.testing.assert_close(e["0"], d["0.weight"].sum(1) + d["0.bias"])
    torch.testing.assert_close(e["2"], d["2.weight"].sum(1) + d["2.bias"])


# ---------------------------------------------------------------------- Nystrom
def _trained_with_sketch(k, T=3, n=2):
    model = mlp(4)
    G = TrajectoryGramian(model, num_probes=1, sketch_rank=k, generator=11)
    W = torch.zeros(G.num_params, G.num_params, dtype=F64)

    def dense(t, X):
        nonlocal W
        W = W + _dense_gramian(model, X, 0.05)

    _train(model, _batches(T, n), 0.05, (G,), on_step=dense)
    return G, W


def test_nystrom_is_exact_when_the_sketch_covers_the_range():
    # rank W <= T * n * C = 3 * 2 * 3 = 18 < k = 24
    G, W = _trained_with_sketch(k=24)
    res = G.nystrom()
    lam = torch.linalg.eigvalsh(W).flip(0)
    scale = float(lam[0])
    torch.testing.assert_close(torch.from_numpy(res.eigenvalues[:18]), lam[:18],
                               rtol=0, atol=1e-9 * scale)
    U = res.eigenvectors
    What = U @ torch.diag(torch.from_numpy(res.eigenvalues)) @ U.T
    assert float(torch.linalg.matrix_norm(What - W)) < 1e-9 * float(torch.linalg.matrix_norm(W))
    torch.testing.assert_close(U.T @ U, torch.eye(24, dtype=F64), atol=1e-10, rtol=0)


def test_nystrom_below_the_truth_and_leverage():
    G, W = _trained_with_sketch(k=5)
    res = G.nystrom(rank=4)
    lam = torch.linalg.eigvalsh(W).flip(0)
    assert res.eigenvalues.shape == (4,)
    assert (res.eigenvalues >= 0).all()
    # the Nystrom approximation is <= W in the PSD order: Weyl's inequalities
    assert (torch.from_numpy(res.eigenvalues) <= lam[:4] * (1 + 1e-9)).all()
    assert res.eigenvalues[0] > 0.5 * float(lam[0])  # and it finds the dominant direction
    lev = res.leverage()
    assert lev.shape == (G.num_params,)
    assert float(lev.sum()) == pytest.approx(4.0)
    assert float(lev.min()) >= 0 and float(lev.max()) <= 1 + 1e-12


# ---------------------------------------------------------------------- state, errors
def test_state_dict_round_trip_continues_identically():
    model = mlp(5)
    xs = [b[0] for b in _batches(4, n=3)]
    full = TrajectoryGramian(model, num_probes=2, sketch_rank=3, generator=21)
    half = TrajectoryGramian(model, num_probes=2, sketch_rank=3, generator=21)
    for X in xs:
        full.update(X, 0.1)
    for X in xs[:2]:
        half.update(X, 0.1)
    resumed = TrajectoryGramian(model, num_probes=2, sketch_rank=3, generator=999)
    resumed.load_state_dict(half.state_dict())
    for X in xs[2:]:
        resumed.update(X, 0.1)
    torch.testing.assert_close(resumed.diagonal(flat=True), full.diagonal(flat=True),
                               rtol=0, atol=0)
    torch.testing.assert_close(resumed.nystrom().eigenvalues, full.nystrom().eigenvalues)
    assert resumed.num_updates == 4
    other = TrajectoryGramian(model, num_probes=2, sketch_rank=2, generator=1)
    with pytest.raises(ValueError, match="sketch"):
        other.load_state_dict(half.state_dict())


@pytest.mark.parametrize("weight", [0.0, -0.1, math.nan, math.inf])
def test_bad_weight_is_refused(weight):
    G = TrajectoryGramian(mlp(0), generator=0)
    with pytest.raises(ValueError, match="weight must be a real number > 0"):
        G.update(torch.ones(2, 4, dtype=F64), weight)
    with pytest.raises(TypeError, match="weight"):
        G.update(torch.ones(2, 4, dtype=F64), "0.1")


def test_bad_construction_is_refused():
    model = mlp(0)
    model[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match="does not require grad"):
        TrajectoryGramian(model, params=[model[0].weight])
    with pytest.raises(ValueError, match="normalize"):
        TrajectoryGramian(model, normalize="avg")
    with pytest.raises(ValueError, match="num_probes"):
        TrajectoryGramian(model, num_probes=0)
    with pytest.raises(ValueError, match="sketch_rank"):
        TrajectoryGramian(model, sketch_rank=10_000)
    with pytest.raises(TypeError, match="generator"):
        TrajectoryGramian(model, generator="seed")
    G = TrajectoryGramian(model, generator=0)
    with pytest.raises(ValueError, match="sketch_rank > 0"):
        G.nystrom()
    with pytest.raises(ValueError, match="empty"):
        TrajectoryGramian(model, sketch_rank=2, generator=0).nystrom()
    with torch.no_grad():
        out = model(torch.ones(2, 4, dtype=F64))
    with pytest.raises(ValueError, match="no autograd graph"):
        G.update(torch.ones(2, 4, dtype=F64), 0.1, outputs=out)


def test_nan_output_names_the_update_and_accumulates_nothing():
    model = mlp(0)
    G = TrajectoryGramian(model, sketch_rank=2, generator=0)
    X = torch.ones(2, 4, dtype=F64)
    G.update(X, 0.1)
    G.update(X, 0.1)
    before = G.diagonal(flat=True)
    with pytest.raises(FloatingPointError, match="update 3"):
        G.update(torch.full((2, 4), math.nan, dtype=F64), 0.1)
    torch.testing.assert_close(G.diagonal(flat=True), before, rtol=0, atol=0)
    assert G.num_updates == 2


# ---------------------------------------------------------------------- dissipation
def _gd_with_dissipation(model, X, y, lr, T, WS):
    """Full-batch GD on the half mean squared error; returns the dense M_t of every step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    Ms = []
    for _ in range(T):
        J = Dense(model).jacobian(X)
        Ms.append(lr / len(X) * J @ J.T)
        out = model(X)
        WS.update(lr, outputs=out)
        opt.zero_grad()
        _sq_loss(out, y).backward()
        opt.step()
    return Ms


def _propagators(Ms):
    D = Ms[0].shape[0]
    Phis = [torch.eye(D, dtype=F64)]
    for M in Ms:
        Phis.append((torch.eye(D, dtype=F64) - M) @ Phis[-1])
    return Phis


def test_dissipation_identity_on_a_linear_model():
    g = torch.Generator().manual_seed(0)
    model = nn.Linear(4, 2, bias=False).double()  # P = 8 < D = 12: a 4-dimensional reservoir
    X, y = torch.randn(6, 4, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64)
    K = Dense(model).jacobian(X) @ Dense(model).jacobian(X).T
    lr = 0.9 * len(X) / float(torch.linalg.eigvalsh(K)[-1])  # eta lambda_max / n = 0.9
    with torch.no_grad():
        r0 = (model(X) - y).reshape(-1)
    WS = hessian.DissipationGramian(model, X)
    Ms = _gd_with_dissipation(model, X, y, lr, 25, WS)
    Phis = _propagators(Ms)
    Phi = Phis[-1]
    # the discrete identity: sum_t Phi_t^T (2 M_t - M_t^2) Phi_t = I - Phi_T^T Phi_T
    S = sum(P.T @ (2 * M - M @ M) @ P for P, M in zip(Phis[:-1], Ms, strict=True))
    torch.testing.assert_close(S, torch.eye(12, dtype=F64) - Phi.T @ Phi, rtol=0, atol=1e-12)
    res = WS.spectrum()
    WSd = 0.5 * (torch.eye(12, dtype=F64) - Phi.T @ Phi)
    torch.testing.assert_close(torch.from_numpy(res.matrix), WSd, rtol=0, atol=1e-10)
    with torch.no_grad():  # a linear model's residual follows Phi exactly
        torch.testing.assert_close((model(X) - y).reshape(-1), Phi @ r0, rtol=0, atol=1e-10)
    assert res.in_range and res.num_probes == res.output_dim == 12
    assert res.eigenvalues.max() <= 0.5 + 1e-12 and res.eigenvalues.min() >= -1e-12
    assert (abs(res.eigenvalues) < 1e-12).sum() == 4  # the reservoir: ker K
    assert res.eigenvalues[0] > 0.49  # dissipated directions approach 1/2


def test_dissipation_with_a_moving_kernel_and_partial_probes():
    model = mlp(6)
    X, y = _batches(1, n=4)[0]
    full = DissipationGramian(model, X)
    part = DissipationGramian(model, X, num_probes=5, generator=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    Ms = []
    for _ in range(8):
        J = Dense(model).jacobian(X)
        Ms.append(0.02 / 4 * J @ J.T)
        out = model(X)
        full.update(0.02, outputs=out)
        part.update(0.02, outputs=out)
        opt.zero_grad()
        _sq_loss(out, y).backward()
        opt.step()
    Phi = _propagators(Ms)[-1]
    WSd = 0.5 * (torch.eye(12, dtype=F64) - Phi.T @ Phi)
    torch.testing.assert_close(torch.from_numpy(full.spectrum().matrix), WSd, rtol=0, atol=1e-10)
    Q = part.probes
    rp = part.spectrum()
    torch.testing.assert_close(torch.from_numpy(rp.matrix), Q.T @ WSd @ Q, rtol=0, atol=1e-10)
    lam = torch.linalg.eigvalsh(WSd)
    assert rp.eigenvalues.max() <= float(lam[-1]) + 1e-12  # Ritz values interlace
    assert rp.eigenvalues.min() >= float(lam[0]) - 1e-12


def test_dissipation_flags_unstable_steps_and_round_trips():
    g = torch.Generator().manual_seed(1)
    model = nn.Linear(3, 1).double()
    X = torch.randn(4, 3, generator=g, dtype=F64)
    WS = DissipationGramian(model, X)
    K = Dense(model).jacobian(X) @ Dense(model).jacobian(X).T
    big = 3.0 * 4 / float(torch.linalg.eigvalsh(K)[-1])  # eta lambda_max / n = 3 > 2
    for _ in range(3):
        WS.update(big)  # linear model: K does not move
    res = WS.spectrum()
    assert not res.in_range and "outside [0, 1/2]" in res.message
    copy = DissipationGramian(model, X)
    copy.load_state_dict(WS.state_dict())
    torch.testing.assert_close(copy.propagated, WS.propagated, rtol=0, atol=0)


def test_dissipation_bad_input():
    model = mlp(0)
    X = torch.ones(2, 4, dtype=F64)
    with pytest.raises(ValueError, match=r"num_probes must be an integer in \[1, 6\]"):
        DissipationGramian(model, X, num_probes=7)
    WS = DissipationGramian(model, X)
    with pytest.raises(ValueError, match="weight must be a real number > 0"):
        WS.update(-1.0)
    with pytest.raises(ValueError, match="shape"):
        WS.update(0.1, outputs=model(torch.ones(3, 4, dtype=F64)))
    WS.update(0.1)
    bad = DissipationGramian(model, torch.full((2, 4), math.nan, dtype=F64))
    with pytest.raises(FloatingPointError, match="update 1"):
        bad.update(0.1)
