import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessian_refs import Dense, cnn, data, mlp  # noqa: E402
from torch import nn  # noqa: E402

import hessian  # noqa: E402

CE = nn.CrossEntropyLoss()
MSE = nn.MSELoss()
MODES = ["autograd", "func"]


def probes(n, k, seed=3, dtype=torch.float64):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def close(a, b, tol=1e-10):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    scale = max(float(b.abs().max()), 1.0)
    assert float((a - b).abs().max()) <= tol * scale, float((a - b).abs().max())


# ---------------------------------------------------------------------- Hessian
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch,loss,target", [("mlp", CE, "ce"), ("cnn", CE, "ce"),
                                              ("mlp", MSE, "mse"), ("cnn", MSE, "mse")])
def test_hessian_products_match_dense(mode, arch, loss, target):
    model = mlp() if arch == "mlp" else cnn()
    X, y = data(arch, 9, target=target)
    H = hessian.HessianOperator(model, loss, (X, y), mode=mode)
    Hd = Dense(model).hessian(loss, [(X, y)])
    V = probes(H.shape[0], 4)
    close(H.matmat(V), Hd @ V)
    close(H.matvec(V[:, 0]), Hd @ V[:, 0])
    assert H.symmetric and not H.psd and H.dtype == torch.float64
    assert H.device == torch.device("cpu") and H.num_matvecs == 5


def test_matmat_columns_equal_matvecs():
    model = mlp()
    X, y = data("mlp", 12)
    H = hessian.HessianOperator(model, CE, (X, y))
    V = probes(H.shape[0], 3)
    cols = torch.stack([H.matvec(V[:, j]) for j in range(3)], 1)
    close(H.matmat(V), cols, 1e-13)


def test_sum_reduction_and_functional_loss():
    model = mlp()
    X, y = data("mlp", 8)
    Hs = hessian.HessianOperator(model, nn.CrossEntropyLoss(reduction="sum"), (X, y))
    Hm = hessian.HessianOperator(model, torch.nn.functional.cross_entropy, (X, y))
    V = probes(Hs.shape[0], 2)
    close(Hs.matmat(V), 8 * Hm.matmat(V))


# ---------------------------------------------------------------------- data loaders
@pytest.mark.parametrize("cls", [hessian.HessianOperator, hessian.GGNOperator])
def test_uneven_last_batch_weighting_is_exact(cls):
    model = mlp()
    X, y = data("mlp", 23)
    full = cls(model, CE, (X, y))
    batches = [(X[:10], y[:10]), (X[10:20], y[10:20]), (X[20:], y[20:])]
    op = cls(model, CE, batches)
    V = probes(full.shape[0], 3)
    close(op.matmat(V), full.matmat(V))
    assert op.num_samples == 23
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=10)
    close(cls(model, CE, loader).matmat(V), full.matmat(V))
    # the plain (unweighted) mean of batch Hessians differs: the test can fail
    plain = sum(cls(model, CE, b).matmat(V) for b in batches) / 3
    assert float((plain - full.matmat(V)).abs().max()) > 1e-6


def test_generator_data_is_kept_and_graph_not_cached_for_loaders():
    model = mlp()
    X, y = data("mlp", 20)
    H = hessian.HessianOperator(model, CE, ((X[i:i + 7], y[i:i + 7]) for i in range(0, 20, 7)))
    assert not H.cache_graph and H._cache == {}
    V = probes(H.shape[0], 2)
    close(H.matmat(V), hessian.HessianOperator(model, CE, (X, y)).matmat(V))
    assert H._cache == {}


def _live_tensors():
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_no_reference_cycles_or_growth_over_passes():
    model = mlp()
    X, y = data("mlp", 30)
    batches = [(X[i:i + 8], y[i:i + 8]) for i in range(0, 30, 8)]
    ops = [hessian.HessianOperator(model, CE, batches), hessian.GGNOperator(model, CE, batches),
           hessian.FisherOperator(model, CE, batches)]
    V = probes(ops[0].shape[0], 3)
    for op in ops:
        op.matmat(V)
        op.matvec(V[:, 0])
    gc.collect()
    before = _live_tensors()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            for op in ops:
                op.matmat(V)
                op.matvec(V[:, 0])
        gc.collect()
        # torch's pytree helpers leave small closure cycles; no tensor (graph) is in one
        assert not [o for o in gc.garbage if issubclass(type(o), torch.Tensor)]
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()
    assert _live_tensors() <= before  # graphs were freed: nothing accumulates over passes


# ---------------------------------------------------------------------- GGN and Fisher
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch,loss,target", [("mlp", CE, "ce"), ("cnn", CE, "ce"),
                                              ("mlp", MSE, "mse"),
                                              ("mlp", nn.MSELoss(reduction="sum"), "mse")])
def test_ggn_matches_dense_and_is_psd(mode, arch, loss, target):
    model = mlp() if arch == "mlp" else cnn()
    X, y = data(arch, 10, target=target)
    G = hessian.GGNOperator(model, loss, (X, y), mode=mode)
    Gd = Dense(model).ggn(loss, X, y)
    V = probes(G.shape[0], 4)
    close(G.matmat(V), Gd @ V)
    Gm = G.matmat(torch.eye(G.shape[0], dtype=torch.float64))
    lam = torch.linalg.eigvalsh(0.5 * (Gm + Gm.T))
    assert float(lam.min()) > -1e-10 * float(lam.max())
    assert G.psd and G.symmetric


def test_ggn_generic_loss_uses_output_hessian():
    model = mlp()
    X, y = data("mlp", 10, target="mse")

    def huberish(o, t):
        return ((o - t) ** 4).mean()

    G = hessian.GGNOperator(model, huberish, (X, y))
    Gd = Dense(model).ggn(huberish, X, y)
    V = probes(G.shape[0], 2)
    close(G.matmat(V), Gd @ V)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch,loss,target", [("mlp", CE, "ce"), ("cnn", MSE, "mse")])
def test_empirical_fisher_matches_per_sample_gradients(mode, arch, loss, target):
    model = mlp() if arch == "mlp" else cnn()
    X, y = data(arch, 9, target=target)
    F = hessian.FisherOperator(model, loss, (X, y), mode=mode)
    g = Dense(model).per_sample_grads(loss, X, y)
    Fd = g.T @ g / len(X)
    V = probes(F.shape[0], 3)
    close(F.matmat(V), Fd @ V)
    assert float(torch.linalg.eigvalsh(Fd).min()) > -1e-12


def test_mc_fisher_is_fixed_reproducible_and_unbiased_for_ggn():
    model = mlp()
    X, y = data("mlp", 6)
    mk = lambda seed, m=1: hessian.FisherOperator(  # noqa: E731
        model, CE, (X, y), kind="mc", generator=torch.Generator().manual_seed(seed),
        mc_samples=m)
    F1, F2 = mk(5), mk(5)
    V = probes(F1.shape[0], 3)
    close(F1.matmat(V), F1.matmat(V), 1e-14)  # a fixed matrix
    close(F1.matmat(V), F2.matmat(V), 1e-14)  # the same generator seed, the same operator
    assert float((mk(6).matmat(V) - F1.matmat(V)).abs().max()) > 1e-8
    # dense MC Fisher from the operator's own draws
    targets = F1._mc_targets[0][0]
    g = Dense(model).per_sample_grads(CE, X, y, targets=targets)
    close(F1.matmat(V), (g.T @ g / 6) @ V)
    # E[F_mc] = GGN: many samples get close
    G = hessian.GGNOperator(model, CE, (X, y)).matmat(V)
    Fm = mk(7, m=4000).matmat(V)
    assert float((Fm - G).norm() / G.norm()) < 0.05
    with pytest.raises(ValueError, match="generator"):
        hessian.FisherOperator(model, CE, (X, y), kind="mc")


def test_mc_fisher_mse_unbiased():
    model = mlp()
    X, y = data("mlp", 5, target="mse")
    G = hessian.GGNOperator(model, MSE, (X, y))
    F = hessian.FisherOperator(model, MSE, (X, y), kind="mc", mc_samples=4000,
                               generator=torch.Generator().manual_seed(0))
    V = probes(G.shape[0], 2)
    assert float((F.matmat(V) - G.matmat(V)).norm() / G.matmat(V).norm()) < 0.05


# ---------------------------------------------------------------------- NTK and J^T J
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_ntk_matches_dense_and_shares_spectrum_with_jtj(mode, arch):
    model = mlp() if arch == "mlp" else cnn()
    X, _ = data(arch, 5)
    J = Dense(model).jacobian(X)
    K = hessian.NTKOperator(model, X, mode=mode)
    assert K.shape == (15, 15) and K.psd
    W = probes(15, 3)
    close(K.matmat(W), J @ J.T @ W)
    Kk = hessian.NTKOperator(model, [(X[:3], None), (X[3:], None)], output=1, mode=mode)
    Jk = J.reshape(5, 3, -1)[:, 1, :]
    w = probes(5, 2)
    close(Kk.matmat(w), Jk @ Jk.T @ w)
    T = hessian.JacobianGramOperator(model, X, mode=mode)
    V = probes(T.shape[0], 2)
    close(T.matmat(V), J.T @ J @ V)
    Kd = K.matmat(torch.eye(15, dtype=torch.float64))
    Td = T.matmat(torch.eye(T.shape[0], dtype=torch.float64))
    lk = torch.linalg.eigvalsh(Kd).flip(0)
    lt = torch.linalg.eigvalsh(Td).flip(0)[:15]
    close(lk, lt, 1e-9)
    assert float(lk.min()) > 1e-8  # all 15 NTK eigenvalues are nonzero here


def test_ntk_over_batches_equals_full():
    model = mlp()
    X, _ = data("mlp", 7)
    full = hessian.NTKOperator(model, X)
    split = hessian.NTKOperator(model, [X[:4], X[4:]])
    W = probes(21, 2)
    close(split.matmat(W), full.matmat(W))
    T = hessian.JacobianGramOperator(model, [X[:4], X[4:]])
    V = probes(T.shape[0], 2)
    close(T.matmat(V), hessian.JacobianGramOperator(model, X).matmat(V))


# ---------------------------------------------------------------------- params, dtype
def test_per_layer_blocks_are_diagonal_blocks():
    model = cnn()
    X, y = data("cnn", 8)
    Hd = Dense(model).hessian(CE, [(X, y)])
    blocks = hessian.per_layer(model, CE, (X, y))
    assert list(blocks) == ["conv", "fc"]
    o = 0
    for name, op in blocks.items():
        n = op.shape[0]
        assert op.param_names == [f"{name}.weight", f"{name}.bias"]
        close(op.matmat(torch.eye(n, dtype=torch.float64)), Hd[o:o + n, o:o + n])
        o += n
    assert o == Hd.shape[0]
    ggn = hessian.per_layer(model, CE, (X, y), kind="ggn")
    Gd = Dense(model).ggn(CE, X, y)
    close(ggn["fc"].matmat(torch.eye(57, dtype=torch.float64)), Gd[20:, 20:])


def test_param_subset_by_name_and_tensor():
    model = mlp()
    X, y = data("mlp", 8)
    names = ["2.weight", "0.bias"]
    Hd = Dense(model, names).hessian(CE, [(X, y)])
    a = hessian.HessianOperator(model, CE, (X, y), params=names)
    b = hessian.HessianOperator(model, CE, (X, y), params=[model[2].weight, model[0].bias])
    V = probes(a.shape[0], 2)
    close(a.matmat(V), Hd @ V)
    close(b.matmat(V), Hd @ V)


def test_float64_evaluation_of_float32_model():
    model32 = mlp(dtype=torch.float32)
    X, y = data("mlp", 10, dtype=torch.float32)
    H = hessian.HessianOperator(model32, CE, (X, y), dtype=torch.float64)
    assert H.dtype == torch.float64
    assert next(model32.parameters()).dtype == torch.float32  # the user's model untouched
    model64 = mlp(dtype=torch.float64)
    Hd = Dense(model64).hessian(CE, [(X.double(), y)])
    V = probes(H.shape[0], 2)
    close(H.matmat(V), Hd @ V)
    H32 = hessian.HessianOperator(model32, CE, (X, y))
    assert H32.dtype == torch.float32
    close(H32.matmat(V.float()).double(), Hd @ V, 1e-4)


# ---------------------------------------------------------------------- bad input
def test_non_scalar_loss():
    model = mlp()
    X, y = data("mlp", 8)
    with pytest.raises(ValueError, match="scalar"):
        hessian.HessianOperator(model, lambda o, t: (o ** 2).sum(1), (X, y))
    with pytest.raises(ValueError, match="reduction"):
        hessian.HessianOperator(model, nn.CrossEntropyLoss(reduction="none"), (X, y))


def test_params_without_grad_and_foreign_tensors():
    model = mlp()
    X, y = data("mlp", 8)
    model[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        hessian.HessianOperator(model, CE, (X, y), params=[model[0].weight])
    H = hessian.HessianOperator(model, CE, (X, y))  # default: trainable ones only
    assert "0.weight" not in H.param_names
    with pytest.raises(ValueError, match="not a parameter"):
        hessian.HessianOperator(model, CE, (X, y), params=[torch.zeros(3)])
    frozen = mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="requires grad"):
        hessian.HessianOperator(frozen, CE, (X, y))


def test_empty_data():
    model = mlp()
    with pytest.raises(ValueError, match="empty"):
        hessian.HessianOperator(model, CE, [])
    with pytest.raises(ValueError, match="empty"):
        hessian.HessianOperator(model, CE, iter([]))


def test_nan_in_loss_names_the_batch():
    model = mlp()
    X, y = data("mlp", 12)
    Xb = X.clone()
    Xb[9, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="batch 1"):
        hessian.HessianOperator(model, CE, [(Xb[:6], y[:6]), (Xb[6:], y[6:])])
    with pytest.raises(FloatingPointError, match="batch 0"):
        hessian.GGNOperator(model, CE, (Xb, y), check_deterministic=False).matvec(
            torch.ones(51, dtype=torch.float64))
    Xi = X.clone()
    Xi[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="batch 0"):
        hessian.HessianOperator(model, CE, (Xi, y), mode="func")


def test_nonfinite_check_reads_batch_sums():
    """A finite sum proves finite entries; an overflowing sum of finite entries is no error."""
    from hessian.curvature._base import CurvatureOperator

    big = torch.full((3,), 3e38, dtype=torch.float32)  # finite entries, the sum overflows
    assert not torch.isfinite(big.sum())
    CurvatureOperator._raise_nonfinite([torch.tensor(1.0), big.sum()], [None, None], big)
    bad = torch.tensor([1.0, float("nan"), 2.0])
    with pytest.raises(FloatingPointError, match="batch 1"):
        CurvatureOperator._raise_nonfinite([torch.tensor(1.0), bad.sum()], [None, None], bad)
    inf = torch.tensor([1.0, float("inf")])
    with pytest.raises(FloatingPointError, match="batch 0.*loss itself is inf"):
        CurvatureOperator._raise_nonfinite([inf.sum()], [torch.tensor(float("inf"))], inf)


def test_device_mismatch():
    model = mlp()
    X, y = data("mlp", 8)
    with pytest.raises(ValueError, match="device"):
        hessian.HessianOperator(model, CE, (X.to("meta"), y))
    H = hessian.HessianOperator(model, CE, (X, y))
    with pytest.raises(ValueError, match="probe is on"):
        H.matvec(torch.ones(51, dtype=torch.float64, device="meta"))


@pytest.mark.parametrize("layer", [nn.Dropout(0.5), nn.BatchNorm1d(6)])
def test_train_mode_stochastic_layers_refused(layer):
    model = nn.Sequential(nn.Linear(4, 6), layer, nn.Tanh(), nn.Linear(6, 3)).double()
    X, y = data("mlp", 8)
    with pytest.raises(ValueError, match="model.eval"):
        hessian.HessianOperator(model, CE, (X, y))
    model.eval()
    hessian.HessianOperator(model, CE, (X, y))  # fine in eval mode


class Noisy(nn.Module):
    def forward(self, x):
        return x + 0.1 * torch.randn_like(x)


def test_nondeterministic_products_refused():
    model = nn.Sequential(nn.Linear(4, 6), Noisy(), nn.Tanh(), nn.Linear(6, 3)).double()
    X, y = data("mlp", 8)
    with pytest.raises(RuntimeError, match="differ"):
        hessian.HessianOperator(model, CE, (X, y))
    hessian.HessianOperator(model, CE, (X, y), check_deterministic=False)


class Augmenting:
    """A data source that draws new noise on every pass (random augmentation)."""

    def __init__(self, X, y):
        self.X, self.y, self.g = X, y, torch.Generator().manual_seed(0)

    def __iter__(self):
        for i in range(0, len(self.X), 5):
            noise = torch.randn(self.X[i:i + 5].shape, generator=self.g, dtype=self.X.dtype)
            yield self.X[i:i + 5] + noise, self.y[i:i + 5]


class Shrinking:
    def __init__(self, X, y):
        self.X, self.y, self.calls = X, y, 0

    def __iter__(self):
        self.calls += 1
        n = 5 if self.calls == 1 else 4
        for i in range(0, len(self.X), n):
            yield self.X[i:i + n], self.y[i:i + n]


def test_changing_data_refused():
    model = mlp()
    X, y = data("mlp", 10)
    with pytest.raises(RuntimeError, match="data that changes"):
        hessian.HessianOperator(model, CE, Augmenting(X, y))
    with pytest.raises(RuntimeError, match="changed between passes"):
        hessian.HessianOperator(model, CE, Shrinking(X, y))


def test_other_bad_arguments():
    model = mlp()
    X, y = data("mlp", 8)
    with pytest.raises(ValueError, match="mode"):
        hessian.HessianOperator(model, CE, (X, y), mode="fast")
    with pytest.raises(ValueError, match="likelihood"):
        hessian.FisherOperator(model, lambda o, t: o.sum(), (X, y))
    with pytest.raises(TypeError, match="data"):
        hessian.HessianOperator(model, CE, 3)
    with pytest.raises(ValueError, match="output"):
        hessian.NTKOperator(model, X, output=3)
    with pytest.raises(TypeError, match="Module"):
        hessian.HessianOperator(lambda x: x, CE, (X, y))


def test_max_probes_chunks_give_same_result():
    model = mlp()
    X, y = data("mlp", 8)
    a = hessian.HessianOperator(model, CE, (X, y))
    b = hessian.HessianOperator(model, CE, (X, y), max_probes=2)
    V = probes(a.shape[0], 5)
    close(a.matmat(V), b.matmat(V), 1e-13)


def test_estimators_run_unchanged_on_operators():
    import spectra

    model = mlp()
    X, y = data("mlp", 16)
    H = hessian.HessianOperator(model, CE, (X, y))
    Hd = Dense(model).hessian(CE, [(X, y)]).numpy()
    lam = np.linalg.eigvalsh(Hd)
    res = spectra.eigsh(H, k=2, rng=0, tol=1e-10)
    np.testing.assert_allclose(res.eigenvalues, lam[::-1][:2], rtol=1e-8)
    assert abs(spectra.trace(H, 51, rng=0).value - np.trace(Hd)) < 1e-8


@pytest.mark.parametrize("mode", MODES)
def test_batching_strategies_agree_and_auto_is_a_fixed_rule(mode):
    model = mlp()
    X, y = data("mlp", 12)
    V = probes(51, 9)
    ref = Dense(model).hessian(CE, [(X, y)]) @ V
    for batching, batched in (("loop", False), ("vmap", True), ("auto", False)):
        H = hessian.HessianOperator(model, CE, (X, y), mode=mode, batching=batching)
        close(H.matmat(V), ref)
        G = hessian.GGNOperator(model, CE, (X, y), mode=mode, batching=batching)
        close(G.matmat(V), Dense(model).ggn(CE, X, y) @ V)
        # "auto" is the loop on a CPU whatever the timings (results never depend on them)
        assert H.batched is batched and G.batched is batched
    with pytest.raises(ValueError, match="batching"):
        hessian.HessianOperator(model, CE, (X, y), batching="threads")
