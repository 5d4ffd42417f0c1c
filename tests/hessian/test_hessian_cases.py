"""Edge cases of the curvature operators: reproducibility, bad input, errors with the fix.

The cases of issue 15 that belong to ``hessian.curvature`` and the errors of issue 16
(attention kernels, ``torch.compile``, autocast, train-mode BatchNorm), each a test.
"""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessian_refs import Dense, data, mlp  # noqa: E402
from lm_refs import lm_batches, tiny_gpt  # noqa: E402
from torch import nn  # noqa: E402

import hessian  # noqa: E402

CE = nn.CrossEntropyLoss()
ROOT = Path(__file__).resolve().parents[2]


def small37():
    """A 37-parameter model (4-5-2)."""
    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    X = torch.randn(16, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (16,), generator=g)
    return m, (X, y)


# ---------------------------------------------------------------------- reproducibility
def _float32_case():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    X = torch.randn(64, 8, generator=g)
    y = torch.randint(0, 4, (64,), generator=g)
    return model, (X, y)


def _clock(fast: str):
    """A fake ``time`` module whose clock makes the loop or the batched path look faster."""
    # consecutive calls time the loop then the batched path: (start, end) twice
    steps = [0.0, 10.0, 0.0, 1.0] if fast == "vmap" else [0.0, 1.0, 0.0, 10.0]
    state = {"t": 0.0, "i": 0}

    def perf_counter():
        state["t"] += steps[state["i"] % 4]
        state["i"] += 1
        return state["t"]

    return types.SimpleNamespace(perf_counter=perf_counter)


def test_batching_auto_does_not_depend_on_timings(monkeypatch):
    """Issue 15: batching="auto" kept whichever of vmap and loop was faster."""
    model, batch = _float32_case()
    values, batched = [], []
    for fast in ("vmap", "loop"):
        monkeypatch.setattr("hessian.curvature._base.time", _clock(fast), raising=False)
        H = hessian.HessianOperator(model, CE, batch)
        values.append(hessian.trace(H, num_matvecs=24, method="hutchinson", rng=0).value)
        batched.append(H.batched)
    # the same path whatever the clock says (here the two paths also agree bitwise, but
    # need not: on other models and builds they differed in the 8th digit)
    assert batched[0] == batched[1] and values[0] == values[1]


_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_hessian_cases import _float32_case, CE
import hessian
torch.set_num_threads(1)
model, batch = _float32_case()
print(repr(hessian.trace(model, CE, batch, 24, method="hutchinson", rng=0).value))
print(repr(hessian.trace(model, CE, batch, 24, rng=0).value))
"""


def test_trace_identical_digits_in_two_processes():
    script = _SCRIPT.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    outs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=env, timeout=300, check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1] and len(outs[0].split()) == 2


# ---------------------------------------------------------------------- bad input
def test_k_beyond_the_dimension_refused():
    """Issue 15: k=10**6 on a 37-parameter model returned 37 values."""
    model, batch = small37()
    for per_layer in (False, True):
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, 37\]"):
            hessian.top_eigenvalues(model, CE, batch, k=10**6, per_layer=per_layer, rng=0)
    with pytest.raises(ValueError, match="k must"):
        hessian.top_eigenvalues(model, CE, batch, k=0, rng=0)
    res = hessian.top_eigenvalues(model, CE, batch, k=37, rng=0)
    assert len(res.eigenvalues) == 37


def test_duplicate_params_refused():
    """Issue 15: params=[w, w] was accepted (a 48-parameter operator for 24 parameters)."""
    model, batch = mlp(), data("mlp", 8)
    w = model[0].weight
    for params in ([w, w], ["0.weight", "0.weight"], ["0.weight", w]):
        with pytest.raises(ValueError, match="twice"):
            hessian.HessianOperator(model, CE, batch, params=params)


@pytest.mark.parametrize("bad", [3, -5])
@pytest.mark.parametrize("cls", [hessian.HessianOperator, hessian.GGNOperator,
                                 hessian.FisherOperator])
def test_out_of_range_class_targets(cls, bad):
    """Issue 15: out-of-range class targets raised IndexError ("Target 3 is out of bounds")."""
    model = mlp()
    X, y = data("mlp", 8)
    y = y.clone()
    y[2] = bad
    with pytest.raises(ValueError, match=r"class targets must be in \[0, 2\]"):
        cls(model, CE, (X, y))
    with pytest.raises(ValueError, match=r"\[0, 2\]|out of bounds"):  # a plain function too
        hessian.HessianOperator(model, lambda o, t: nn.functional.cross_entropy(o, t), (X, y))


def test_bad_params_and_max_probes_name_the_argument():
    """Issue 15: params=3 gave "'int' object is not iterable"; max_probes=2.5 is named."""
    model, batch = mlp(), data("mlp", 8)
    with pytest.raises(TypeError, match="params must be None, a parameter name"):
        hessian.HessianOperator(model, CE, batch, params=3)
    with pytest.raises(TypeError, match="max_probes must be an integer >= 1, got 2.5"):
        hessian.HessianOperator(model, CE, batch, max_probes=2.5)
    with pytest.raises(TypeError, match="params entries must be .* entry 1 is float"):
        hessian.HessianOperator(model, CE, batch, params=["0.weight", 1.5])
    with pytest.raises(TypeError, match="check_deterministic must be"):
        hessian.HessianOperator(model, CE, batch, check_deterministic="yes")
    with pytest.raises(ValueError, match="batch_format"):
        hessian.HessianOperator(model, CE, batch, batch_format="kwargs")
    with pytest.raises(TypeError, match="output must be"):
        hessian.GGNOperator(model, CE, batch, output=3.5)
    with pytest.raises(TypeError, match="num_examples must be a callable"):
        hessian.HessianOperator(model, CE, batch, num_examples=8)


def test_sum_loss_over_unequal_batches_not_silently_wrong():
    """Issue 16: a plain sum-reduced loss over unequal batches gave 0.656x the truth."""
    model = mlp()
    X, y = data("mlp", 30)
    batches = [(X[:24], y[:24]), (X[24:], y[24:])]

    def loss(o, t):
        return nn.functional.cross_entropy(o, t, reduction="sum")

    truth = np.linalg.eigvalsh(Dense(model).hessian(loss, batches, reduction="sum").numpy())[-1]
    res = hessian.top_eigenvalues(model, loss, batches, rng=0, tol=1e-10)
    np.testing.assert_allclose(res.eigenvalues[0], truth, rtol=1e-8)


def test_ignored_targets_not_silently_counted():
    """Targets -100 (nn.CrossEntropyLoss's ignore_index) once broke the GGN's closed form."""
    model = mlp()
    X, y = data("mlp", 10)
    y = y.clone()
    y[:4] = -100
    Gd = Dense(model).ggn(CE, X[4:], y[4:])
    G = hessian.GGNOperator(model, CE, (X, y))
    V = torch.randn(51, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(G.matmat(V), Gd @ V, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- errors with the fix
def test_fused_attention_error_names_the_fix():
    model, batch = tiny_gpt(sdpa=True), lm_batches()[0]
    with pytest.raises(RuntimeError, match='attn_implementation="eager".*SDPBackend.MATH'):
        hessian.HessianOperator(model, "loss", batch)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):  # the switch the message names works
        H = hessian.HessianOperator(model, "loss", batch)
        Hd = hessian.HessianOperator(tiny_gpt(sdpa=False), "loss", batch)
        v = torch.ones(H.shape[0], dtype=torch.float64)
        torch.testing.assert_close(H.matvec(v), Hd.matvec(v), rtol=1e-9, atol=1e-12)


def test_compiled_model_refused_with_the_fix():
    model, batch = mlp(), data("mlp", 8)
    compiled = torch.compile(model)
    with pytest.raises(TypeError, match="torch.compile.*_orig_mod"):
        hessian.HessianOperator(compiled, CE, batch)
    nested = nn.Sequential(torch.compile(nn.Linear(4, 3).double()))
    with pytest.raises(TypeError, match=r"at 0\) is compiled"):
        hessian.GGNOperator(nested, CE, batch)
    H = hessian.HessianOperator(compiled._orig_mod, CE, batch)  # the fix works
    assert H.shape == (51, 51)


def test_autocast_is_disabled_for_the_curvature():
    model32 = mlp(dtype=torch.float32)
    X, y = data("mlp", 10, dtype=torch.float32)
    ref = hessian.HessianOperator(model32, CE, (X, y))
    v = torch.ones(51)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.warns(UserWarning, match="autocast.*parameters' dtype"):
            H = hessian.HessianOperator(model32, CE, (X, y))
        out = H.matvec(v)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref.matvec(v), rtol=1e-6, atol=1e-6)

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model32

        def forward(self, x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.net(x)

    with pytest.raises(ValueError, match="bfloat16.*autocast"):
        hessian.GGNOperator(Mixed(), CE, (X, y))


def test_train_mode_batchnorm_opt_in_protects_running_statistics():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))
    model = model.double().train()
    with torch.no_grad():
        model[1].running_mean.copy_(torch.randn(6, generator=g, dtype=torch.float64))
    X, y = data("mlp", 12)
    with pytest.raises(ValueError, match="allow_train_mode=True"):
        hessian.HessianOperator(model, CE, (X, y))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    H = hessian.HessianOperator(model, CE, (X, y), allow_train_mode=True)
    G = hessian.GGNOperator(model, CE, (X, y), allow_train_mode=True, mode="func")
    V = torch.randn(H.shape[0], 3, generator=g, dtype=torch.float64)
    HV, GV = H.matmat(V), G.matmat(V)
    for k, v in model.state_dict().items():  # running statistics and counters untouched
        assert torch.equal(v, before[k]), k
    assert model.training and model[1].track_running_stats
    # the reference: the train-mode function (batch statistics), reverse over reverse on a
    # copy that keeps no statistics (torch.func.hessian disagrees with finite differences
    # on this model in torch 2.13; jacrev of grad agrees)
    copy = nn.Sequential(*[nn.BatchNorm1d(6, track_running_stats=False)
                           if isinstance(m, nn.BatchNorm1d) else m for m in model]).double()
    copy.load_state_dict(model.state_dict(), strict=False)
    D = Dense(copy.train())
    ref = torch.func.jacrev(torch.func.grad(lambda v: CE(D.f(v, X), y)))(D.theta)
    torch.testing.assert_close(HV, ref @ V, rtol=1e-9, atol=1e-10)
    assert float((GV - HV).abs().max()) > 1e-6  # a different operator: the test can fail
    drop = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.3)).double().train()
    with pytest.raises(ValueError, match="stochastic layers.*model.eval"):
        hessian.HessianOperator(drop, CE, (X, y), allow_train_mode=True)
