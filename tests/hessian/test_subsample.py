"""Full-data curvature from data subsamples: the data-space Gram and its map back."""

import pickle
import socket
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hessian  # noqa: E402
from hessian.curvature.subsample import data_blocks, extrapolated_density  # noqa: E402
from spectra.operators import dense_matrix  # noqa: E402

N = 60


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 24), torch.nn.Tanh(),
                               torch.nn.Linear(24, 3)).double()


def _data(n=N, seed=1, target="ce"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = (torch.randint(0, 3, (n,), generator=g) if target == "ce"
         else torch.randn(n, 3, generator=g, dtype=torch.float64))
    return X, y


def _nonzero(e, k):
    return np.sort(e)[-k:]


@pytest.mark.parametrize("kind,loss", [("ggn", torch.nn.CrossEntropyLoss()),
                                       ("ggn", torch.nn.MSELoss()),
                                       ("fisher", torch.nn.CrossEntropyLoss()),
                                       ("ntk", None)])
def test_full_gram_has_the_parameter_space_spectrum(kind, loss):
    model = _mlp()
    X, y = _data(target="mse" if isinstance(loss, torch.nn.MSELoss) else "ce")
    data = X if kind == "ntk" else (X, y)
    sb = data_blocks(model, loss, data, kind=kind)
    K = dense_matrix(sb(np.arange(N)))
    ref = {"ggn": lambda: hessian.GGNOperator(model, loss, (X, y)),
           "fisher": lambda: hessian.FisherOperator(model, loss, (X, y)),
           "ntk": lambda: hessian.JacobianGramOperator(model, X)}[kind]()
    er = np.linalg.eigvalsh(dense_matrix(ref))
    ek = np.linalg.eigvalsh(K) * sb.scale
    assert K.shape == (N * sb.rows_per_index,) * 2
    assert sb.rows_per_index == {"ggn": 2 if loss is not None and
                                 not isinstance(loss, torch.nn.MSELoss) else 3,
                                 "fisher": 1, "ntk": 3}[kind]
    k = min(K.shape[0], sb.num_params)
    np.testing.assert_allclose(_nonzero(ek, k), _nonzero(er, k), atol=1e-10 * er.max())
    assert sb.num_params == ref.shape[0]


def test_a_block_is_the_principal_submatrix_on_its_points():
    model, (X, y) = _mlp(), _data()
    sb = data_blocks(model, torch.nn.CrossEntropyLoss(), (X, y))
    r = sb.rows_per_index
    full = dense_matrix(sb(np.arange(N)))
    idx = np.array([2, 7, 30, 59])
    rows = (idx[:, None] * r + np.arange(r)).ravel()
    np.testing.assert_allclose(dense_matrix(sb(idx)), full[np.ix_(rows, rows)],
                               atol=1e-12 * np.abs(full).max())


def test_extrapolated_density_is_the_data_space_law_mapped_back():
    from freedecomp import decompress

    model, (X, y) = _mlp(), _data()
    loss = torch.nn.CrossEntropyLoss()
    sb = data_blocks(model, loss, (X, y))
    r = sb.rows_per_index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = extrapolated_density(model, loss, (X, y), sample_size=24, num_samples=2,
                                   rng=0)
        law = decompress(sb, N * r, n=24, total=N, rng=0, num_samples=2)
    P = sb.num_params
    assert res.size == P and P > N * r
    rank = N * r * (1 - dict(law.atoms).get(0.0, 0.0))
    assert dict(res.atoms)[0.0] == pytest.approx(1 - rank / P)
    assert res.trace() == pytest.approx(sb.scale * law.trace(), rel=1e-9)
    assert abs(res.density.weights.sum() - 1) < 1e-12
    assert res.diagnostics.block_estimates[0]["method"] == "dense"


def test_full_data_ggn_trace_and_top_from_a_quarter_of_the_data():
    model = _mlp()
    X, y = _data(240, seed=3)
    loss = torch.nn.CrossEntropyLoss()
    ev = np.linalg.eigvalsh(dense_matrix(hessian.GGNOperator(model, loss, (X, y))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = extrapolated_density(model, loss, (X, y), sample_size=60, num_samples=4, rng=0)
    assert res.size == ev.size
    assert abs(res.trace() / ev.sum() - 1) < 0.1  # the trace is the invariant carried to N
    top = float(res.quantile(1 - 0.5 / res.size))
    assert abs(top / ev[-1] - 1) < 0.3


def test_bad_sample_sizes_and_data_are_refused():
    model, (X, y) = _mlp(), _data()
    loss = torch.nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="the data has 60 points"):
        extrapolated_density(model, loss, (X, y), sample_size=60)
    with pytest.raises(ValueError, match="sample_size >= 16"):
        extrapolated_density(model, loss, (X, y), sample_size=10)
    with pytest.raises(TypeError, match="needs targets"):
        data_blocks(model, loss, X)
    with pytest.raises(TypeError, match="one \\(inputs, targets\\) pair"):
        data_blocks(model, loss, [(X, y), (X, y)])
    with pytest.raises(ValueError, match="distinct"):
        data_blocks(model, loss, (X, y))(np.array([0, 0, 1]))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available()
                    or not torch.distributed.is_gloo_available(), reason="gloo not available")
def test_two_gloo_ranks_give_the_single_process_product(tmp_path):
    from subsample_dist_worker import run

    out = str(tmp_path / "res")
    torch.multiprocessing.spawn(run, args=(2, _free_port(), out), nprocs=2, join=True)
    r0, r1 = (pickle.load(open(f"{out}.{k}", "rb")) for k in (0, 1))
    sb = data_blocks(_mlp(), torch.nn.CrossEntropyLoss(), _data())
    V = torch.as_tensor(np.random.default_rng(0).standard_normal((8 * sb.rows_per_index, 3)))
    ref = sb(np.array([1, 5, 20, 33, 40, 41, 50, 59])).matmat(V).numpy()
    np.testing.assert_array_equal(r0, r1)
    np.testing.assert_allclose(r0, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("points", [150, 12])  # N r = 300 > P = 219, and 24 < P
def test_map_back_of_the_exact_data_space_law_is_the_exact_ggn_law(points):
    """``embed`` of the full Gram's own law is the GGN's: nonzero part times ``s``, zeros."""
    from freedecomp.blocks import embed
    from freedecomp.result import Decompression
    from spectra.distances import wasserstein1

    model, (X, y) = _mlp(), _data(points)
    loss = torch.nn.CrossEntropyLoss()
    sb = data_blocks(model, loss, (X, y))
    e = np.linalg.eigvalsh(dense_matrix(sb(np.arange(points))))
    size = e.size
    zero = e <= 1e-10 * e.max()
    law = Decompression(x=np.linspace(0.0, e.max(), 8), rho=np.zeros(8), size=size,
                        sample_size=size, atoms=[(0.0, zero.mean())]
                        + [(float(v), 1.0 / size) for v in e[~zero]])
    P = sb.num_params
    out = embed(law, scale=sb.scale, size=P)
    ggn = np.linalg.eigvalsh(dense_matrix(hessian.GGNOperator(model, loss, (X, y))))
    rank = int((~zero).sum())
    assert rank == int((ggn > 1e-10 * ggn.max()).sum()) and rank <= min(P, size)
    assert dict(out.atoms)[0.0] == pytest.approx(1 - rank / P, abs=1e-12)
    d = out.density
    assert wasserstein1(d.nodes, ggn, d.weights) <= 1e-9 * ggn.max()
    assert out.trace() == pytest.approx(ggn.sum(), rel=1e-9)
