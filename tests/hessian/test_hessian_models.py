"""Curvature of the models people train: dict batches, model outputs, tokens, tied weights.

A GPT-2-style model written in ``lm_refs`` (keyword inputs, a ``ModelOutput``-like
return, the output layer tied to the embedding, ``-100`` labels, shifted causal loss)
and small MLPs, every product against dense float64 ``torch.func`` references.
"""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessian_refs import Dense, data, mlp  # noqa: E402
from lm_refs import DenseLM, causal_lm_loss, lm_batches, tiny_gpt, valid_tokens  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import hessian  # noqa: E402

LM = hessian.LanguageModelLoss()
CE = nn.CrossEntropyLoss()


def probes(n, k, seed=3):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def close(a, b, tol=1e-10):
    scale = max(float(b.abs().max()), 1.0)
    assert float((a - b).abs().max()) <= tol * scale, float((a - b).abs().max())


@pytest.fixture(scope="module")
def lm():
    model, batches = tiny_gpt(), lm_batches()
    ref = DenseLM(model)
    return model, batches, ref, ref.hessian(batches), ref.ggn(batches)


# ---------------------------------------------------------------------- dict batches, outputs
@pytest.mark.parametrize("mode", ["autograd", "func"])
def test_lm_hessian_and_ggn_over_dict_batches_weighted_by_tokens(lm, mode):
    model, batches, _, Hd, Gd = lm
    assert [valid_tokens(b) for b in batches] == [9, 5]  # unequal: the weights matter
    H = hessian.HessianOperator(model, LM, batches, output="logits", mode=mode)
    G = hessian.GGNOperator(model, LM, batches, output="logits", mode=mode)
    V = probes(H.shape[0], 3)
    close(H.matmat(V), Hd @ V)
    close(G.matmat(V), Gd @ V)
    assert H.num_examples == 14 and H.num_samples == 5 and H.reduction == "mean"
    # a DataLoader of dict batches (default collation) gives the same operator
    loader = torch.utils.data.DataLoader(
        [{k: v[i] for k, v in b.items()} for b in batches for i in range(len(b["labels"]))],
        batch_size=3)
    close(hessian.GGNOperator(model, LM, loader, output="logits").matmat(V), Gd @ V)
    # batches weighted by samples instead of tokens would differ: the test can fail
    plain = sum(hessian.GGNOperator(model, LM, b, output="logits").matmat(V) * len(b["labels"])
                for b in batches) / 5
    assert float((plain - Gd @ V).abs().max()) > 1e-4


def test_loss_taken_from_the_output_field(lm):
    model, batches, ref, Hd, _ = lm
    V = probes(Hd.shape[0], 2)
    one = hessian.HessianOperator(model, "loss", batches[0])  # output.loss, one batch
    close(one.matmat(V), ref.hessian(batches[:1]) @ V)
    # several batches whose loss is a token mean: the probe cannot tell the weights
    with pytest.raises(ValueError, match="num_examples=.*LanguageModelLoss"):
        hessian.HessianOperator(model, "loss", batches)
    # ... and with the count given, the operator is exact
    H = hessian.HessianOperator(model, "loss", batches, reduction="mean",
                                num_examples=valid_tokens)
    close(H.matmat(V), Hd @ V)
    # a pair with no targets and a loss read from the output (issue 16's table)
    kw = {k: batches[0][k] for k in batches[0]}
    pair = hessian.HessianOperator(model, lambda out, t: out.loss, (kw, None))
    close(pair.matmat(V), ref.hessian(batches[:1]) @ V)
    with pytest.raises(ValueError, match="function of the model's outputs"):
        hessian.GGNOperator(model, "loss", batches[0])


def test_output_extraction_is_needed_and_named(lm):
    model, batches, *_ = lm
    with pytest.raises(TypeError, match="output='logits'.*'logits'"):
        hessian.GGNOperator(model, LM, batches[0])
    with pytest.raises(ValueError, match="no field 'logit'"):
        hessian.GGNOperator(model, LM, batches[0], output="logit")
    G1 = hessian.GGNOperator(model, LM, batches[0], output="logits")
    G2 = hessian.GGNOperator(model, LM, batches[0], output=lambda out: out["logits"])
    V = probes(G1.shape[0], 2)
    close(G1.matmat(V), G2.matmat(V), 1e-14)


def test_lm_empirical_fisher_is_per_token(lm):
    model, batches, ref, _, _ = lm
    Fop = hessian.FisherOperator(model, LM, batches, output="logits")
    rows = []
    for b in batches:
        shift = F.pad(b["labels"], (0, 1), value=-100)[..., 1:].reshape(-1)

        def per_token(v, b=b, shift=shift):
            lg = ref.logits(v, b)
            return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), shift, ignore_index=-100,
                                   reduction="none")

        J = torch.func.jacrev(per_token)(ref.theta)
        rows.append(J[shift != -100])
    g = torch.cat(rows)
    assert g.shape[0] == 14
    V = probes(Fop.shape[0], 2)
    close(Fop.matmat(V), g.T @ (g @ V) / 14)


def test_lm_ntk_from_logits(lm):
    model, batches, ref, _, _ = lm
    K = hessian.NTKOperator(model, batches, output="logits")
    J = torch.cat([torch.func.jacrev(lambda v, b=b: ref.logits(v, b))(ref.theta)
                   .reshape(-1, ref.theta.numel()) for b in batches])
    assert K.shape == (J.shape[0],) * 2
    W = probes(K.shape[0], 2)
    close(K.matmat(W), J @ (J.T @ W))


def test_ignored_labels_excluded_from_loss_and_curvature():
    """nn.CrossEntropyLoss with -100 targets: the closed forms skip them, batches by counts."""
    model = mlp()
    X, y = data("mlp", 12)
    y = y.clone()
    y[[1, 4, 5, 9]] = -100
    batches = [(X[:7], y[:7]), (X[7:], y[7:])]  # 4 and 4 counted targets of 7 and 5
    keep = y != -100
    D = Dense(model)
    Gd = D.ggn(nn.CrossEntropyLoss(), X[keep], y[keep])
    Hd = D.hessian(nn.CrossEntropyLoss(), [(X[keep], y[keep])])
    g = D.per_sample_grads(nn.CrossEntropyLoss(), X[keep], y[keep])
    V = probes(Gd.shape[0], 3)
    G = hessian.GGNOperator(model, CE, batches)
    close(G.matmat(V), Gd @ V)
    close(hessian.HessianOperator(model, CE, batches).matmat(V), Hd @ V)
    close(hessian.FisherOperator(model, CE, batches).matmat(V), g.T @ (g @ V) / 8)
    assert G.num_examples == 8


# ---------------------------------------------------------------------- batch formats
@dataclasses.dataclass
class LMBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


def test_dataclass_batches_and_positional_tuples(lm):
    model, batches, _, Hd, _ = lm
    V = probes(Hd.shape[0], 2)
    dc = [LMBatch(**b) for b in batches]
    close(hessian.HessianOperator(model, LM, dc, output="logits").matmat(V), Hd @ V)
    # a tuple of positional inputs, the loss on the output and the whole batch
    args = [(b["input_ids"], b["attention_mask"], b["labels"]) for b in batches]
    H = hessian.HessianOperator(model, lambda out, batch: LM(out.logits, batch[2]), args,
                                batch_format="args", reduction="mean",
                                num_examples=lambda batch: LM.count(batch[2]))
    close(H.matmat(V), Hd @ V)
    with pytest.raises(TypeError, match="batch_format='args'"):
        hessian.HessianOperator(model, "loss", [args[0][:3]])


def test_mapping_inputs_in_a_pair_and_tensor_batches():
    model = mlp()
    X, y = data("mlp", 9)

    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x, scale=1.0):
            return self.net(x) * scale

    kw = KW()
    V = probes(51, 2)
    ref = Dense(model).hessian(CE, [(X, y)]) @ V
    close(hessian.HessianOperator(kw, CE, ({"x": X}, y)).matmat(V), ref)
    # a bare tensor batch: the loss gets the batch itself (an autoencoder-like loss)
    ae = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 4)).double()
    H = hessian.HessianOperator(ae, lambda out, x: ((out - x) ** 2).mean(), X)
    D = Dense(ae)
    Hd = torch.func.hessian(lambda v: ((D.f(v, X) - X) ** 2).mean())(D.theta)
    W = probes(H.shape[0], 2)
    close(H.matmat(W), Hd @ W)


# ---------------------------------------------------------------------- parameters
def test_tied_weights_counted_once_everywhere(lm):
    model, batches, _, Hd, _ = lm
    names = [n for n, _ in model.named_parameters()]
    P = sum(p.numel() for p in model.parameters())  # unique tensors
    H = hessian.HessianOperator(model, LM, batches, output="logits")
    assert H.param_names == names and "lm_head.weight" not in names and H.shape == (P, P)
    blocks = hessian.per_layer(model, LM, batches, output="logits")
    assert "lm_head" not in blocks and "transformer.wte" in blocks
    assert sum(op.shape[0] for op in blocks.values()) == P
    traces = hessian.trace(model, LM, batches, 10**4, per_layer=True, output="logits", rng=0)
    total = sum(t.value for t in traces.values())
    np.testing.assert_allclose(total, float(torch.trace(Hd)), rtol=1e-9)
    # the tied tensor by either name, or both: one parameter
    for sel in (["lm_head.weight"], ["lm_head.weight", "transformer.wte.weight"]):
        op = hessian.HessianOperator(model, LM, batches[0], output="logits", params=sel)
        assert op.param_names == ["transformer.wte.weight"]
    with pytest.raises(ValueError, match="twice"):
        hessian.HessianOperator(model, LM, batches[0], output="logits",
                                params=[model.lm_head.weight, model.transformer.wte.weight])


@pytest.mark.parametrize("sel", ["transformer.h.1", "transformer.h.1.*", "module"])
def test_prefix_glob_and_module_selection(lm, sel):
    model, batches, ref, Hd, _ = lm
    params = model.transformer.h[1] if sel == "module" else sel
    H = hessian.HessianOperator(model, LM, batches, output="logits", params=params)
    names = [n for n, _ in model.named_parameters()]
    chosen = [n for n in names if n.startswith("transformer.h.1.")]
    assert H.param_names == chosen and len(chosen) == 12
    sub = DenseLM(model, chosen).hessian(batches)
    V = probes(H.shape[0], 2)
    close(H.matmat(V), sub @ V)
    glob = hessian.HessianOperator(model, LM, batches[0], output="logits", params="*.attn.*")
    assert all(".attn." in n for n in glob.param_names) and len(glob.param_names) == 8
    blocks = hessian.per_layer(model, LM, batches, output="logits", params=params)
    assert all(name.startswith("transformer.h.1.") for name in blocks)


def test_selection_errors_name_the_fix(lm):
    model, batches, *_ = lm
    with pytest.raises(ValueError, match="matches no parameter.*transformer.h"):
        hessian.HessianOperator(model, LM, batches[0], output="logits", params="transformr.h.1")
    with pytest.raises(TypeError, match="params must be .*glob"):
        hessian.HessianOperator(model, LM, batches[0], output="logits", params=3)
    with pytest.raises(ValueError, match="not a submodule"):
        hessian.HessianOperator(model, LM, batches[0], output="logits", params=nn.Linear(2, 2))


# ---------------------------------------------------------------------- functional models
def _functional_mlp():
    model = mlp()
    params = {n: p.detach().clone() for n, p in model.named_parameters()}

    def f(p, x):
        return torch.tanh(x @ p["0.weight"].T + p["0.bias"]) @ p["2.weight"].T + p["2.bias"]

    return model, params, f


@pytest.mark.parametrize("mode", ["autograd", "func"])
def test_functional_model_equals_module(mode):
    model, params, f = _functional_mlp()
    X, y = data("mlp", 10)
    batches = [(X[:6], y[:6]), (X[6:], y[6:])]
    V = probes(51, 3)
    Hd = Dense(model).hessian(CE, batches)
    Gd = Dense(model).ggn(CE, X, y)
    H = hessian.HessianOperator(f, CE, batches, params=params, mode=mode)
    assert H.param_names == list(params) and H.shape == (51, 51)
    close(H.matmat(V), Hd @ V)
    close(hessian.GGNOperator(f, CE, batches, params=params, mode=mode).matmat(V), Gd @ V)
    J = Dense(model).jacobian(X)
    close(hessian.NTKOperator(f, X, params=params, mode=mode).matmat(probes(30, 2)),
          J @ (J.T @ probes(30, 2)))
    blocks = hessian.per_layer(f, CE, batches, params=params)
    assert list(blocks) == ["0", "2"]
    close(blocks["2"].matmat(torch.eye(21, dtype=torch.float64)), Hd[30:, 30:])
    assert all(torch.equal(params[n], p.detach()) for n, p in model.named_parameters())
    with pytest.raises(TypeError, match="params="):
        hessian.HessianOperator(f, CE, batches)


# ---------------------------------------------------------------------- the reduction probe
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reduction_probe_on_unequal_batches(reduction):
    """Issue 16: a plain sum-reduced loss over two unequal batches gave 0.656x the truth."""
    model = mlp()
    X, y = data("mlp", 13)
    batches = [(X[:9], y[:9]), (X[9:], y[9:])]

    def loss(o, t):
        return F.cross_entropy(o, t, reduction=reduction)

    H = hessian.HessianOperator(model, loss, batches)
    assert H.reduction == reduction
    Hd = Dense(model).hessian(loss, batches, reduction=reduction).numpy()
    res = hessian.top_eigenvalues(H, k=1, rng=0, tol=1e-10)
    np.testing.assert_allclose(res.eigenvalues[0], np.linalg.eigvalsh(Hd)[-1], rtol=1e-8)
    with torch.no_grad():
        want = float(sum(loss(model(Xb), yb) * (len(Xb) / 13 if reduction == "mean" else 1)
                         for Xb, yb in batches))
    np.testing.assert_allclose(H.loss(), want, rtol=1e-12)


def test_reduction_unknown_over_batches_is_an_error_with_the_fix():
    model = mlp()
    X, y = data("mlp", 13)
    batches = [(X[:9], y[:9]), (X[9:], y[9:])]

    def maxloss(o, t):  # neither a mean nor a sum over samples
        return F.cross_entropy(o, t, reduction="none").max()

    with pytest.raises(ValueError, match="reduction='sum', or reduction='mean' with num_examples"):
        hessian.HessianOperator(model, maxloss, batches)
    hessian.HessianOperator(model, maxloss, batches[0])  # one batch: no weights needed
    # one-sample batches cannot be probed either
    single = [(X[i:i + 1], y[i:i + 1]) for i in range(3)]
    with pytest.raises(ValueError, match="reduction"):
        hessian.HessianOperator(model, lambda o, t: F.cross_entropy(o, t), single)
    ok = hessian.HessianOperator(model, lambda o, t: F.cross_entropy(o, t), single,
                                 reduction="mean")
    assert ok.reduction == "mean"


def test_known_losses_are_not_probed_and_contradictions_refused():
    model = mlp()
    X, y = data("mlp", 8)
    batches = [(X[:5], y[:5]), (X[5:], y[5:])]
    assert hessian.HessianOperator(model, F.cross_entropy, batches).reduction == "mean"
    with pytest.raises(ValueError, match="contradicts"):
        hessian.HessianOperator(model, nn.CrossEntropyLoss(reduction="sum"), batches,
                                reduction="mean")


def test_causal_lm_loss_matches_the_model_loss(lm):
    model, batches, *_ = lm
    b = batches[0]
    out = model(**b)
    torch.testing.assert_close(LM(out.logits, b), out.loss)
    torch.testing.assert_close(LM(out.logits, b["labels"]), causal_lm_loss(out.logits,
                                                                          b["labels"]))
    assert LM.count(b) == valid_tokens(b)
    unshifted = hessian.LanguageModelLoss(shift=False)
    torch.testing.assert_close(unshifted(out.logits, b), F.cross_entropy(
        out.logits.reshape(-1, 11), b["labels"].reshape(-1), ignore_index=-100))
    with pytest.raises(ValueError, match="no field 'labels'"):
        LM(out.logits, {"input_ids": b["input_ids"]})


def test_doctests():
    import doctest
    import importlib

    for name in ("hessian", "hessian.curvature.losses", "hessian.curvature.model",
                 "hessian.curvature.operators", "hessian.curvature.spectrum"):
        res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, name


def test_batch_size_never_guessed_for_weights():
    """Inputs disagreeing on their leading dimension: several batches need num_examples."""
    model = mlp()
    X, y = data("mlp", 12)

    class WithScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, scale, x, y=None):  # the first tensor is not per sample
            return self.net(x) * scale

    m = WithScale()
    one = torch.ones(1, dtype=torch.float64)
    batches = [{"scale": one, "x": X[:8], "y": y[:8]}, {"scale": one, "x": X[8:], "y": y[8:]}]

    def loss(out, batch):  # a plain mean over the batch's samples
        return F.cross_entropy(out, batch["y"])

    with pytest.raises(ValueError, match=r"leading dimensions \[1, 8\].*num_examples"):
        hessian.HessianOperator(m, loss, batches, reduction="mean")
    H = hessian.HessianOperator(m, loss, batches, reduction="mean",
                                num_examples=lambda b: len(b["y"]))
    V = probes(51, 2)
    close(H.matmat(V), Dense(model).hessian(CE, [(X, y)]) @ V)
    hessian.HessianOperator(m, loss, batches[0])  # one batch: no weights to get wrong


def test_lm_mc_fisher_unbiased_for_the_ggn(lm):
    model, batches, _, _, Gd = lm
    F_mc = hessian.FisherOperator(model, LM, batches, output="logits", kind="mc",
                                  mc_samples=3000, generator=torch.Generator().manual_seed(0))
    V = probes(Gd.shape[0], 2)
    assert float((F_mc.matmat(V) - Gd @ V).norm() / (Gd @ V).norm()) < 0.05
    few = hessian.FisherOperator(model, LM, batches, output="logits", kind="mc",
                                 mc_samples=1, generator=torch.Generator().manual_seed(0))
    assert float((few.matmat(V) - Gd @ V).norm() / (Gd @ V).norm()) > 0.05  # can fail
