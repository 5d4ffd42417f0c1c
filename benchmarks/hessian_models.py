"""Models of the curvature benchmarks: a ResNet-18 and a GPT-2-style language model.

``resnet18``: the ResNet-18 architecture (He et al. 2016; the layout of torchvision's
``resnet18``: a 7x7 stride-2 stem with max pooling, four stages of two basic blocks with
64-512 channels, global average pooling, a linear head) written here, since the
torchvision wheels available for this environment are CUDA builds. 11.18 million
parameters with 10 classes. BatchNorm layers are in eval mode, with running statistics
of a few train-mode passes over random data so that they are not the identity.

``gpt2``: transformers' ``GPT2LMHeadModel`` built from a config (no download; eager
attention: the fused SDPA kernels have no second derivative) when transformers is
installed, with the output layer tied to the token embedding; ``None`` otherwise.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 10, width: int = 64) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        chans = [w, 2 * w, 4 * w, 8 * w]
        stages, cin = [], w
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, c, stride), BasicBlock(c, c, 1)))
            cin = c
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet18(batch: int = 32, size: int = 32, width: int = 64, seed: int = 0):
    """A ResNet-18 in eval mode and one CIFAR-sized batch ``(X, y)`` of random data."""
    g = torch.Generator().manual_seed(seed)
    model = ResNet18(width=width)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan = m.weight[0].numel()
                m.weight.normal_(0, (2.0 / fan) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.zero_()
        model.train()
        for _ in range(3):  # running statistics that are not the identity
            model(torch.randn(batch, 3, size, size, generator=g))
    X = torch.randn(batch, 3, size, size, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    return model.eval(), (X, y)


def gpt2(layers: int = 2, width: int = 128, heads: int = 4, vocab: int = 1000,
         positions: int = 64, batch: int = 8, seq: int = 32, seed: int = 0):
    """``(model, batch dict)`` of a randomly initialised GPT-2, or None without transformers.

    The batch holds ``input_ids``, ``attention_mask`` and ``labels`` (equal to the ids, all
    counted: the quantity every tool computes is then the same).
    """
    try:
        import transformers
    except ImportError:
        return None
    cfg = transformers.GPT2Config(n_layer=layers, n_embd=width, n_head=heads,
                                  vocab_size=vocab, n_positions=positions, bos_token_id=0,
                                  eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0,
                                  attn_pdrop=0.0, attn_implementation="eager")
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # transformers initialises from the global generator
        model = transformers.GPT2LMHeadModel(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


class Logits(nn.Module):
    """``input_ids -> shifted logits (B (T - 1), V)``: the adapter tensor-only tools need."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        logits = self.lm(input_ids=ids).logits[:, :-1]
        return logits.reshape(-1, logits.shape[-1])


def shifted_targets(batch: dict) -> torch.Tensor:
    """The labels the adapter's logits predict, flat."""
    return batch["labels"][:, 1:].reshape(-1)
