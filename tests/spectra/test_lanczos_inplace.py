"""Lanczos blocks updated in place, in the operator's framework (issue 14, item 2).

numpy blocks take the fused Numba passes; torch blocks are stored probe by probe and
updated in place (``addcmul_``, ``baddbmm_``, ``mul_``) with float64 column dots: the
product block becomes the next Lanczos block, no fresh ``n x p`` array per step.
"""

import numpy as np
import pytest

from spectra import Operator, lanczos
from spectra.testing import matrix_from_eigenvalues

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
def test_torch_matches_numpy_for_the_same_start_block(reorth, dtype):
    d = LAM.astype(dtype)
    V = np.random.default_rng(0).standard_normal((d.size, 3)).astype(dtype)
    # without reorthogonalisation rounding grows once orthogonality is lost
    k = 25 if reorth == "full" else (8 if dtype == np.float64 else 5)
    a = lanczos(np.diag(d), k, v0=V, reorth=reorth)
    b = lanczos(_diag_op(torch.from_numpy(d)), k, v0=torch.from_numpy(V), reorth=reorth)
    rtol = 1e-10 if dtype == np.float64 else 1e-3  # float32: rounding amplified by steps
    np.testing.assert_allclose(b.alpha, a.alpha, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(b.beta, a.beta, rtol=rtol, atol=rtol * 1e-2)
    if reorth == "full":
        assert isinstance(b.basis, torch.Tensor) and b.basis.dtype == torch.from_numpy(d).dtype
        np.testing.assert_allclose(b.basis.numpy(), a.basis, atol=10 * rtol)


def test_torch_exact_at_full_steps():
    A = matrix_from_eigenvalues(LAM, rng=3)
    res = lanczos(torch.from_numpy(A), LAM.size, reorth="full", rng=4)
    np.testing.assert_allclose(np.linalg.eigvalsh(res.tridiagonal()), LAM, rtol=1e-11,
                               atol=1e-13)
    Q = res.basis[0].numpy()
    np.testing.assert_allclose(Q @ Q.T, np.eye(LAM.size), atol=1e-12)
    for p in (1, 3):  # a batch of start vectors, each exact
        V = torch.from_numpy(np.random.default_rng(p).standard_normal((LAM.size, p)))
        res = lanczos(torch.from_numpy(A), LAM.size, v0=V, reorth="full")
        for i in range(p):
            theta, tau = res.ritz(i)
            np.testing.assert_allclose(theta, LAM, rtol=1e-11, atol=1e-13)
            np.testing.assert_allclose(np.sum(tau**2), 1.0, rtol=1e-12)


@pytest.mark.parametrize("reorth", ["full", "none"])
def test_the_product_block_becomes_the_next_lanczos_block(reorth):
    # no fresh n x p block per step: step j + 1 multiplies the memory of product j
    ptrs = []
    d = torch.linspace(1.0, 2.0, 5000, dtype=torch.float32)
    V = torch.randn(5000, 4, generator=torch.Generator().manual_seed(0))
    lanczos(_diag_op(d, ptrs), 6, v0=V, reorth=reorth)
    inputs, outputs = ptrs[0::2], ptrs[1::2]
    assert inputs[1:] == outputs[:-1]


def test_a_product_aliasing_its_input_a_graph_or_another_layout_is_copied():
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
    rowmajor = Operator.from_matvec(lambda v: w.detach() * v, (n, n), dtype=torch.float64,
                                    symmetric=True,
                                    matmat=lambda V: (w.detach()[:, None] * V).contiguous())
    again = lanczos(rowmajor, n, rng=0)
    np.testing.assert_allclose(again.alpha, res.alpha, rtol=1e-12)
