"""A float32 Lanczos basis at a length where float32 sums drift: unit norms, orthogonality."""

import numpy as np
import pytest
from helpers import float32_diagonal

import spectra

torch = pytest.importorskip("torch")


def test_float32_full_reorth_basis_is_orthonormal_at_large_n():
    # n = 1.5 million float32 entries: a float32 norm over the whole length is off by about
    # 5e-5 relative, which used to leave the start vector that far from unit norm
    n = 1_500_000
    op = float32_diagonal(n, [5.0, 8.0, 12.0, 20.0, 50.0, 120.0], shuffle=0)
    v0 = torch.randn(n, 1, generator=torch.Generator().manual_seed(1)) + 3.0
    res = spectra.lanczos(op, 24, v0=v0, reorth="full")
    B = res.basis[0].double()
    E = (B @ B.T - torch.eye(B.shape[0], dtype=torch.float64)).abs().numpy()
    assert np.max(np.diag(E)) < 1e-6
    assert np.max(E) < 5e-6
    # the reported start norm is the float64 norm of v0
    assert abs(res.start_norms[0] / float(v0.double().norm()) - 1.0) < 1e-7
