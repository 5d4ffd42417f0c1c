"""Tiny models and dense float64 curvature references built with torch.func."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def mlp(seed: int = 0, dtype=torch.float64) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return m.to(dtype)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(18, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def cnn(seed: int = 0, dtype=torch.float64) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    m = SmallCNN()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=g))
    return m.to(dtype)


def data(kind: str, n: int, seed: int = 1, dtype=torch.float64, target="ce"):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 4) if kind == "mlp" else (n, 1, 5, 5)
    X = torch.randn(shape, generator=g, dtype=dtype)
    if target == "ce":
        y = torch.randint(0, 3, (n,), generator=g)
    else:
        y = torch.randn(n, 3, generator=g, dtype=dtype)
    return X, y


class Dense:
    """Dense references for a model (functional, flat float64 parameters)."""

    def __init__(self, model: nn.Module, names=None) -> None:
        self.model = model
        named = dict(model.named_parameters())
        self.names = list(named) if names is None else list(names)
        self.shapes = [named[n].shape for n in self.names]
        self.rest = {k: v.detach() for k, v in named.items() if k not in self.names}
        self.theta = torch.cat([named[n].detach().reshape(-1) for n in self.names]).double()

    def unflat(self, v):
        out, o = dict(self.rest), 0
        for n, s in zip(self.names, self.shapes, strict=True):
            k = s.numel()
            out[n] = v[o:o + k].reshape(s)
            o += k
        return out

    def f(self, v, X):
        return functional_call(self.model, self.unflat(v), (X,))

    def hessian(self, loss_fn, batches, reduction="mean"):
        N = sum(len(X) for X, _ in batches)

        def total(v):
            parts = [loss_fn(self.f(v, X), y) * (len(X) / N if reduction == "mean" else 1.0)
                     for X, y in batches]
            return sum(parts)

        return torch.func.hessian(total)(self.theta)

    def jacobian(self, X):
        J = torch.func.jacrev(lambda v: self.f(v, X))(self.theta)
        return J.reshape(-1, self.theta.numel())  # (N*C, P), sample-major

    def ggn(self, loss_fn, X, y):
        J = self.jacobian(X)
        out = self.f(self.theta, X).detach()
        Lam = torch.func.hessian(lambda o: loss_fn(o, y))(out)
        Lam = Lam.reshape(out.numel(), out.numel())
        return J.T @ Lam @ J

    def per_sample_grads(self, loss_fn, X, y, targets=None):
        t = y if targets is None else targets
        return torch.stack([
            torch.func.grad(lambda v, i=i: loss_fn(self.f(v, X[i:i + 1]), t[i:i + 1]))(self.theta)
            for i in range(len(X))
        ])
