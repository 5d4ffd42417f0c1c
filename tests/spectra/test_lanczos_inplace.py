"""Lanczos blocks updated in place, in the operator's framework (issue 14, item 2).

CPU tensors run the numpy path on zero-copy views (the same fused kernels: bitwise the
numpy answer for the same start block and products); device tensors update the product
block in place with float64 column dots. The device branch is forced here on CPU
tensors, so that it is tested without a GPU.
"""

import importlib

import numpy as np
import pytest

from spectra import Operator, lanczos
from spectra.testing import matrix_from_eigenvalues

lz = importlib.import_module("spectra.krylov.lanczos")  # the module, not the function

torch = pytest.importorskip("torch")

LAM = np.r_[np.linspace(0.1, 1.0, 57), 2.0, 3.5, 5.0]


def _diag_op(d, record=None):
    """A diagonal torch operator (products bitwise those of numpy's ``d[:, None] * V``)."""
    def mm(V):
        if record is not None:
            record.append(V.data_ptr())
        out = d[:, None] * V
        if record is not None:
            record.append(out.data_ptr())
        return out

    return Operator.from_matvec(lambda v: d * v, (d.shape[0],) * 2, dtype=d.dtype,
                                symmetric=True, matmat=mm)


@pytest.mark.parametrize("reorth", ["full", "none"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cpu_torch_equals_numpy_bitwise(reorth, dtype):
    d = LAM.astype(dtype)
    V = np.random.default_rng(0).standard_normal((d.size, 3)).astype(dtype)
    a = lanczos(np.diag(d), 25, v0=V, reorth=reorth)
    b = lanczos(_diag_op(torch.from_numpy(d)), 25, v0=torch.from_numpy(V), reorth=reorth)
    np.testing.assert_array_equal(b.alpha, a.alpha)
    np.testing.assert_array_equal(b.beta, a.beta)
    if reorth == "full":
        assert isinstance(b.basis, torch.Tensor) and b.basis.dtype == torch.from_numpy(d).dtype
        np.testing.assert_array_equal(b.basis.numpy(), a.basis)


@pytest.fixture
def device_branch(monkeypatch):
    """Run the in-place device branch on CPU tensors."""
    monkeypatch.setattr(lz, "_host", lambda op: op.backend == "numpy")


@pytest.mark.parametrize("reorth", ["full", "none"])
def test_device_branch_matches_host_branch(device_branch, reorth):
    A = matrix_from_eigenvalues(LAM, rng=2)
    V = np.random.default_rng(1).standard_normal((LAM.size, 2))
    k = 30 if reorth == "full" else 10  # without it rounding grows once orthogonality is lost
    a = lanczos(A, k, v0=V, reorth=reorth)
    b = lanczos(torch.from_numpy(A), k, v0=torch.from_numpy(V), reorth=reorth)
    np.testing.assert_allclose(b.alpha, a.alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-10, atol=1e-12)


def test_device_branch_exact_at_full_steps(device_branch):
    A = matrix_from_eigenvalues(LAM, rng=3)
    res = lanczos(torch.from_numpy(A), LAM.size, reorth="full", rng=4)
    np.testing.assert_allclose(np.linalg.eigvalsh(res.tridiagonal()), LAM, rtol=1e-11,
                               atol=1e-13)
    Q = res.basis[0].numpy()
    np.testing.assert_allclose(Q @ Q.T, np.eye(LAM.size), atol=1e-12)


@pytest.mark.parametrize("branch", ["host", "device"])
def test_the_product_block_becomes_the_next_lanczos_block(branch, monkeypatch):
    # no fresh n x p block per step: step j + 1 multiplies the memory of product j
    if branch == "device":
        monkeypatch.setattr(lz, "_host", lambda op: op.backend == "numpy")
    ptrs = []
    d = torch.linspace(1.0, 2.0, 5000, dtype=torch.float32)
    lanczos(_diag_op(d, ptrs), 6, v0=torch.ones(5000, 4), reorth="none")
    inputs, outputs = ptrs[0::2], ptrs[1::2]
    assert inputs[1:] == outputs[:-1]


@pytest.mark.parametrize("branch", ["host", "device"])
def test_a_product_aliasing_its_input_or_a_graph_is_copied(branch, monkeypatch):
    if branch == "device":
        monkeypatch.setattr(lz, "_host", lambda op: op.backend == "numpy")
    n = 40
    ident = Operator.from_matvec(lambda v: v, (n, n), dtype=torch.float64, symmetric=True,
                                 matmat=lambda V: V)
    res = lanczos(ident, 5, rng=0)
    assert res.steps[0] == 1 and res.breakdown[0]
    np.testing.assert_allclose(res.alpha[0, 0], 1.0, rtol=1e-15)
    w = torch.linspace(1.0, 2.0, n, dtype=torch.float64, requires_grad=True)
    graph = Operator.from_matvec(lambda v: w * v, (n, n), dtype=torch.float64,
                                 symmetric=True, matmat=lambda V: w[:, None] * V)
    res = lanczos(graph, n, rng=0)
    np.testing.assert_allclose(np.linalg.eigvalsh(res.tridiagonal()),
                               np.linspace(1.0, 2.0, n), rtol=1e-10)
