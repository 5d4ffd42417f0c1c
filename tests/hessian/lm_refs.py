"""A GPT-2-style language model written here, and dense float64 references for it.

The module mirrors the conventions of transformers' ``GPT2LMHeadModel`` without the
dependency: keyword inputs (``input_ids``, ``attention_mask``, ``labels``), a
``ModelOutput``-like return (a mapping with attribute access holding ``logits`` and, given
labels, ``loss``), the output layer tied to the token embedding, and labels ``-100`` that
do not count in the shifted (causal) token cross-entropy.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

VOCAB, WIDTH, HEADS, LAYERS, POSITIONS = 11, 8, 2, 2, 8


class Output(dict):
    """A mapping with attribute access, like transformers' ``ModelOutput``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


class Attention(nn.Module):
    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.c_attn = nn.Linear(WIDTH, 3 * WIDTH)
        self.c_proj = nn.Linear(WIDTH, WIDTH)
        self.sdpa = sdpa

    def forward(self, h, mask):
        B, T, _ = h.shape
        q, k, v = self.c_attn(h).split(WIDTH, dim=-1)
        q, k, v = (t.reshape(B, T, HEADS, -1).transpose(1, 2) for t in (q, k, v))
        causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
        allowed = causal[None, None] & mask[:, None, None, :].bool()
        if self.sdpa:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:
            s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            a = torch.softmax(s.masked_fill(~allowed, -1e9), dim=-1) @ v
        return self.c_proj(a.transpose(1, 2).reshape(B, T, WIDTH))


class Block(nn.Module):
    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(WIDTH)
        self.attn = Attention(sdpa)
        self.ln_2 = nn.LayerNorm(WIDTH)
        self.mlp = nn.Sequential(nn.Linear(WIDTH, 2 * WIDTH), nn.Tanh(),
                                 nn.Linear(2 * WIDTH, WIDTH))

    def forward(self, h, mask):
        h = h + self.attn(self.ln_1(h), mask)
        return h + self.mlp(self.ln_2(h))


class Body(nn.Module):
    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, WIDTH)
        self.wpe = nn.Embedding(POSITIONS, WIDTH)
        self.h = nn.ModuleList(Block(sdpa) for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(WIDTH)


class TinyGPT(nn.Module):
    """``model(input_ids=..., attention_mask=..., labels=...)`` -> Output(loss, logits)."""

    def __init__(self, sdpa: bool = False) -> None:
        super().__init__()
        self.transformer = Body(sdpa)
        self.lm_head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2

    def forward(self, input_ids, attention_mask=None, labels=None):
        B, T = input_ids.shape
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        tr = self.transformer
        h = tr.wte(input_ids) + tr.wpe(torch.arange(T, device=input_ids.device))[None]
        for block in tr.h:
            h = block(h, mask)
        logits = self.lm_head(tr.ln_f(h))
        out = Output(logits=logits)
        if labels is not None:
            out["loss"] = causal_lm_loss(logits, labels)
        return out


def causal_lm_loss(logits, labels, reduction="mean"):
    """What transformers' causal LMs compute: shifted labels, -100 ignored."""
    shift = F.pad(labels, (0, 1), value=-100)[..., 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), shift.reshape(-1),
                           ignore_index=-100, reduction=reduction)


def tiny_gpt(seed=0, sdpa=False, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    m = TinyGPT(sdpa)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return m.to(dtype).eval()


def lm_batches(sizes=(3, 2), T=6, seed=1, pad=True):
    """Dict batches with padding (-100 labels, attention mask 0) at the ends."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, B in enumerate(sizes):
        ids = torch.randint(0, VOCAB, (B, T), generator=g)
        mask = torch.ones(B, T, dtype=torch.long)
        labels = ids.clone()
        if pad:
            cut = T - 1 - (i % 2) - torch.arange(B) % 3  # ragged lengths
            for r in range(B):
                mask[r, cut[r]:] = 0
                labels[r, cut[r]:] = -100
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def valid_tokens(batch):
    return int((F.pad(batch["labels"], (0, 1), value=-100)[..., 1:] != -100).sum())


class DenseLM:
    """Dense float64 references of the token-weighted objective over dict batches."""

    def __init__(self, model, names=None):
        self.model = model
        named = dict(model.named_parameters())  # tied tensor once, by its first name
        self.names = list(named) if names is None else list(names)
        self.shapes = [named[n].shape for n in self.names]
        self.rest = {k: v.detach() for k, v in named.items() if k not in self.names}
        self.theta = torch.cat([named[n].detach().reshape(-1) for n in self.names])

    def unflat(self, v):
        out, o = dict(self.rest), 0
        for n, s in zip(self.names, self.shapes, strict=True):
            out[n] = v[o:o + s.numel()].reshape(s)
            o += s.numel()
        return out

    def logits(self, v, batch):
        kw = {k: batch[k] for k in ("input_ids", "attention_mask")}
        return functional_call(self.model, self.unflat(v), (), kw)["logits"]

    def objective(self, batches):
        n = sum(valid_tokens(b) for b in batches)

        def total(v):
            return sum(causal_lm_loss(self.logits(v, b), b["labels"], "sum") for b in batches) / n

        return total

    def hessian(self, batches):
        # reverse over reverse: torch.func.hessian (forward over reverse) came out wrong
        # and non-symmetric on this model (torch 2.13, embeddings + attention), by 0.47
        H = torch.func.jacrev(torch.func.grad(self.objective(batches)))(self.theta)
        assert float((H - H.T).abs().max()) <= 1e-10 * float(H.abs().max())
        return H

    def ggn(self, batches):
        n = sum(valid_tokens(b) for b in batches)
        G = 0
        for b in batches:
            J = torch.func.jacrev(lambda v, b=b: self.logits(v, b))(self.theta)
            out = self.logits(self.theta, b).detach()
            J = J.reshape(out.numel(), -1)
            Lam = torch.func.hessian(lambda o, b=b: causal_lm_loss(o, b["labels"], "sum"))(out)
            G = G + J.T @ Lam.reshape(out.numel(), out.numel()) @ J / n
        return G
