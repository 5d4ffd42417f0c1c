import pickle
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from hessian_dist_worker import N, run  # noqa: E402
from hessian_refs import data, mlp  # noqa: E402

import hessian  # noqa: E402


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="gloo not available")
def test_two_gloo_ranks_equal_single_process(tmp_path):
    out = str(tmp_path / "res")
    torch.multiprocessing.spawn(run, args=(2, free_port(), out), nprocs=2, join=True)
    r0 = pickle.load(open(out + ".0", "rb"))
    r1 = pickle.load(open(out + ".1", "rb"))
    # every rank ran the same Lanczos and got the same answer
    np.testing.assert_array_equal(r0["eig"], r1["eig"])
    assert r0["trace"] == r1["trace"] and r0["seed"] == r1["seed"]
    # single process on all 23 samples (one batch)
    model, loss = mlp(), torch.nn.CrossEntropyLoss()
    X, y = data("mlp", N)
    eig = hessian.top_eigenvalues(model, loss, (X, y), k=2, rng=0, tol=1e-10)
    tr = hessian.trace(model, loss, (X, y), 30, rng=1)
    den = hessian.density(model, loss, (X, y), num_probes=3, num_steps=20, rng=2)
    ggn = hessian.trace(model, loss, (X, y), 30, rng=3, kind="ggn")
    np.testing.assert_allclose(r0["eig"], eig.eigenvalues, rtol=1e-6)
    assert r0["eig_mv"] == eig.num_matvecs
    np.testing.assert_allclose(r0["trace"], tr.value, rtol=1e-6)
    np.testing.assert_allclose(r0["ggn"], ggn.value, rtol=1e-6)
    # the quadrature measure, probe by probe (nodes ascending within each probe)
    np.testing.assert_allclose(r0["nodes"], den.nodes, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(r0["weights"], den.weights, rtol=1e-6, atol=1e-9)
