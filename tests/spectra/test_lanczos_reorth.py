"""The DGKS second Gram-Schmidt pass of ``lanczos(reorth="full")`` (issue 14).

One pass against the stored basis after the three-term step, a second one only for the
probes where the first left less than ``1/sqrt(2)`` of the norm: skipped on a
well-conditioned run, taken when the first pass cancels, and the basis orthonormal to
rounding level on a hard spectrum over 200 steps (numpy float64 and torch float32).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import spectra
import spectra.krylov.lanczos  # noqa: F401  (the module, not the function)
from spectra.operators import as_operator

lz = sys.modules["spectra.krylov.lanczos"]


def _counting(monkeypatch):
    """Wrap ``_recurrence`` to record the second passes taken per step."""
    taken = []
    inner = lz._recurrence

    def wrapped(*args):
        W, ab, again = inner(*args)
        taken.append(again)
        return W, ab, again

    monkeypatch.setattr(lz, "_recurrence", wrapped)
    return taken


def _op(A, backend, dtype):
    return as_operator(A if backend == "numpy" else torch.as_tensor(A, dtype=dtype))


CASES = [("numpy", torch.float64), ("torch", torch.float64), ("torch", torch.float32)]


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_second_pass_skipped_when_well_conditioned(monkeypatch, backend, dtype):
    rng = np.random.default_rng(0)
    d = np.linspace(1.0, 2.0, 300)
    A = np.diag(d)
    taken = _counting(monkeypatch)
    v0 = rng.standard_normal((300, 3))
    v0 = v0 if backend == "numpy" else torch.as_tensor(v0, dtype=dtype)
    res = spectra.lanczos(_op(A, backend, dtype), 12, v0=v0)
    assert len(taken) == 12 and sum(taken) == 0
    Q = np.asarray(res.basis, dtype=np.float64)
    tol = 100 * np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
    for i in range(3):
        assert np.linalg.norm(Q[i] @ Q[i].T - np.eye(12)) < tol


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_second_pass_taken_when_first_cancels(backend, dtype):
    """A product nearly in the span of the basis: the first pass keeps ~1e-4 of it."""
    n, j, p = 500, 6, 2
    rng = np.random.default_rng(1)
    B = np.stack([np.linalg.qr(rng.standard_normal((n, j)))[0].T for _ in range(p)])
    W = np.einsum("pjn,pj->np", B, rng.standard_normal((p, j)))
    W += 1e-4 * rng.standard_normal((n, p))
    Q, Q_prev = np.zeros((n, p)), np.zeros((n, p))  # no three-term couplings
    op = _op(np.eye(n), backend, dtype)
    if backend == "numpy":
        args = (np.ascontiguousarray(W), Q, Q_prev)
        Bj = B
    else:
        args = tuple(lz._probe_major(torch.as_tensor(X, dtype=dtype), copy=True)
                     for X in (W, Q, Q_prev))
        Bj = torch.as_tensor(B, dtype=dtype)
    out, ab, again = lz._recurrence(op, *args, np.zeros(p), Bj)
    assert again == p
    out = np.asarray(out, dtype=np.float64)
    Bn = np.asarray(Bj, dtype=np.float64)
    eps = np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
    for i in range(p):
        w = out[:, i]
        np.testing.assert_allclose(ab[1, i], np.linalg.norm(w), rtol=1e-5)
        assert np.linalg.norm(Bn[i] @ w) / np.linalg.norm(w) < 50 * eps


def _hard_spectrum(n: int, rng) -> np.ndarray:
    """Clusters (to 1e-10) and well separated values over six orders of magnitude."""
    clusters = np.concatenate([c + 1e-10 * rng.random(40) for c in (1.0, 2.0, 5.0)])
    spread = np.geomspace(1e-3, 1e3, n - clusters.size)
    d = np.concatenate([clusters, spread])
    X = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return (X * d) @ X.T


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_basis_orthonormal_on_hard_spectrum(monkeypatch, backend, dtype):
    rng = np.random.default_rng(2)
    A = _hard_spectrum(400, rng)
    taken = _counting(monkeypatch)
    res = spectra.lanczos(_op(A, backend, dtype), 200, rng=3)
    assert res.steps[0] == 200 and not res.breakdown[0]
    Q = np.asarray(res.basis[0], dtype=np.float64)
    eps = np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
    assert np.linalg.norm(Q @ Q.T - np.eye(200)) < 200 * eps
    # T = Q^T A Q to rounding level (the Lanczos relation in the orthonormal basis)
    T = res.tridiagonal()
    assert np.linalg.norm(Q @ A @ Q.T - T) < 200 * eps * np.linalg.norm(A, 2)
    assert sum(taken) < 200  # the second pass is the exception, not the rule


def test_full_steps_exact_against_eigvalsh():
    rng = np.random.default_rng(4)
    A = _hard_spectrum(120, rng)
    res = spectra.lanczos(A, 120, rng=5)
    np.testing.assert_allclose(np.linalg.eigvalsh(res.tridiagonal()), np.linalg.eigvalsh(A),
                               atol=1e-11 * np.linalg.norm(A, 2))
