"""The curvature of a real transformers GPT-2 built from a config (no download).

Skipped when ``transformers`` is not installed (it is not in the test extra: see
``lm_refs`` for the local model that mirrors its conventions and runs everywhere).
"""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lm_refs import DenseLM, lm_batches, valid_tokens  # noqa: E402

import hessian  # noqa: E402


def gpt2(attn="eager"):
    cfg = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=8, vocab_size=11, n_positions=8,
                                  bos_token_id=0, eos_token_id=0, resid_pdrop=0.0,
                                  embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation=attn)
    torch.manual_seed(0)  # transformers initialises from the global generator
    return transformers.GPT2LMHeadModel(cfg).double().eval()


@pytest.fixture(scope="module")
def case():
    model, batches = gpt2(), lm_batches()
    ref = DenseLM(model)
    return model, batches, ref, ref.hessian(batches), ref.ggn(batches)


def test_gpt2_products_match_dense(case):
    model, batches, ref, Hd, Gd = case
    assert model.lm_head.weight is model.transformer.wte.weight
    LM = hessian.LanguageModelLoss()
    V = torch.randn(Hd.shape[0], 2, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    H = hessian.HessianOperator(model, LM, batches, output="logits")
    torch.testing.assert_close(H.matmat(V), Hd @ V, rtol=1e-9, atol=1e-10)
    G = hessian.GGNOperator(model, LM, batches, output="logits")
    torch.testing.assert_close(G.matmat(V), Gd @ V, rtol=1e-9, atol=1e-10)
    # the model's own output.loss (computed in float32 by transformers: said, and exact
    # to float32), batches weighted by the counted tokens given
    with pytest.warns(UserWarning, match="float32 accuracy"):
        Ho = hessian.HessianOperator(model, "loss", batches, reduction="mean",
                                     num_examples=valid_tokens)
    torch.testing.assert_close(Ho.matmat(V), Hd @ V, rtol=1e-4, atol=1e-5)
    assert "lm_head.weight" not in H.param_names and H.shape[0] == ref.theta.numel()


def test_gpt2_default_attention_error_names_the_fix():
    model = gpt2(attn="sdpa")
    with pytest.raises(RuntimeError, match='attn_implementation="eager"'):
        hessian.HessianOperator(model, "loss", lm_batches()[0])
