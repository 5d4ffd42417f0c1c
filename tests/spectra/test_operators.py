import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from spectra import Operator, as_operator
from spectra.operators import require_symmetric
from spectra.testing import matrix_from_eigenvalues


def test_dense_sparse_linear_operator_agree():
    A = matrix_from_eigenvalues(np.arange(1.0, 21.0), rng=0)
    v = np.random.default_rng(1).standard_normal(20)
    V = np.random.default_rng(2).standard_normal((20, 3))
    for obj in (A, sp.csr_matrix(A), sp.csc_array(A), aslinearoperator(A)):
        op = as_operator(obj)
        np.testing.assert_allclose(op.matvec(v), A @ v, rtol=1e-12)
        np.testing.assert_allclose(op.matmat(V), A @ V, rtol=1e-12)
        np.testing.assert_allclose(op @ v, A @ v, rtol=1e-12)
        assert op.shape == (20, 20)


def test_symmetry_detected_exactly_and_randomly():
    A = np.triu(np.ones((6, 6)))
    assert as_operator(A).symmetric is False
    assert as_operator(A + A.T).symmetric is True
    assert as_operator(sp.csr_matrix(A)).symmetric is False
    lin = as_operator(aslinearoperator(A))
    assert lin.symmetric is None
    with pytest.raises(ValueError, match="not symmetric"):
        require_symmetric(lin, "lanczos")
    lin2 = as_operator(aslinearoperator(A + A.T))
    require_symmetric(lin2, "lanczos")
    assert lin2.symmetric is True


def test_from_matvec_counts_and_validates_output_shape():
    A = np.diag([1.0, 2.0, 3.0])
    op = Operator.from_matvec(lambda v: A @ v, (3, 3), dtype=np.float64)
    op.matvec(np.ones(3))
    op.matmat(np.ones((3, 4)))
    assert op.num_matvecs == 5
    bad = Operator.from_matvec(lambda v: np.ones(2), (3, 3), dtype=np.float64)
    with pytest.raises(ValueError, match="returned shape"):
        bad.matvec(np.ones(3))
    with pytest.raises(ValueError, match="expects a vector of shape"):
        op.matvec(np.ones(4))


@pytest.mark.parametrize(
    ("obj", "exc", "match"),
    [
        (np.ones((3, 3), dtype=int), TypeError, "float32 or float64"),
        (np.ones((3, 3), dtype=complex), TypeError, "float32 or float64"),
        (np.ones((3, 3), dtype=np.float16), TypeError, "float32 or float64"),
        (np.ones(3), ValueError, "2-d"),
        (np.ones((0, 0)), ValueError, "empty"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), ValueError, "NaN or Inf"),
        ("matrix", TypeError, "cannot make an operator"),
        (lambda v: v, TypeError, "from_matvec"),
    ],
)
def test_bad_inputs(obj, exc, match):
    with pytest.raises(exc, match=match):
        as_operator(obj)


def test_symmetric_flag_on_rectangular_is_refused():
    with pytest.raises(ValueError, match="square"):
        as_operator(np.ones((3, 4)), symmetric=True)
    op = as_operator(np.ones((3, 4)))
    assert op.symmetric is False
    with pytest.raises(ValueError, match="square"):
        require_symmetric(op, "eigsh")


def test_flags_override_returns_copy():
    op = as_operator(np.eye(4))
    op2 = as_operator(op, psd=True)
    assert op2.psd and not op.psd and op2 is not op


def test_torch_tensor_operator_keeps_device_and_dtype():
    torch = pytest.importorskip("torch")
    A = torch.tensor(matrix_from_eigenvalues(np.arange(1.0, 6.0), rng=0), dtype=torch.float32)
    op = as_operator(A)
    assert op.backend == "torch" and op.dtype == torch.float32 and op.symmetric
    y = op.matvec(torch.ones(5))
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        as_operator(torch.ones((3, 3), dtype=torch.int64))
