"""Properties every estimator shares, swept over one case list each.

* Exact at full budget: a budget of ``n`` products (or more) gives the dense answer,
  at ``n`` products, with a zero standard error (:func:`helpers.check_exact`).
* Torch equals numpy: the same probes (equal torch generators, :func:`helpers.same_probes`)
  give the same answer on a torch tensor as on the numpy array, at the same cost
  (:func:`helpers.check_torch_matches_numpy`). An integer seed gives each framework its
  own probes: each run is bit-reproducible and covers the truth within its error bar.

A new estimator joins by adding its :class:`helpers.Case` to the lists below.
"""

import numpy as np
import pytest
from helpers import Case, check_exact, check_torch_matches_numpy, same_probes

from spectra import (
    as_operator,
    density,
    diagonal,
    eigsh,
    lanczos,
    logdet,
    trace,
    trace_function,
)
from spectra.stochtrace import DIAGONAL_METHODS, TRACE_METHODS
from spectra.testing import matrix_from_eigenvalues


def psd(A):
    return as_operator(A, psd=True)


def _estimate(res):
    return {"value": res.value}


def _ritz(res):
    theta, tau = res.ritz(0)
    return {"ritz": theta, "mass": np.sum(tau**2)}


def _eigenvalues(res):
    return {"eigenvalues": res.eigenvalues}


def _measure(res):
    return {"nodes": np.sort(res.nodes), "weights": res.weights}


def _no_restarts_small_residuals(res, A):
    assert res.num_restarts == 0
    X = res.eigenvectors
    np.testing.assert_allclose(np.linalg.norm(A @ X - X * res.eigenvalues, axis=0), 0,
                               atol=1e-11)


def _both_ends(lam, k):
    """``which="BE"``: ``k // 2`` from the bottom, the rest from the top, ascending."""
    return np.r_[lam[: k // 2], lam[lam.size - (k - k // 2):]]


# ---------------------------------------------------------------- exact at full budget
EXACT = [
    *[Case(f"trace-{m}-{over}", lambda A, m=m, over=over: trace(psd(A), A.shape[0] + over,
                                                                 method=m, block_size=50, rng=0),
           _estimate, lambda A, lam: {"value": lam.sum()})
      for m in TRACE_METHODS for over in (0, 380)],
    *[Case(f"diagonal-{m}", lambda A, m=m: diagonal(A, A.shape[0], method=m, block_size=33),
           _estimate, lambda A, lam: {"value": np.diag(A)}, {"value": (1e-13, 0.0)})
      for m in DIAGONAL_METHODS],
    Case("lanczos", lambda A: lanczos(A, A.shape[0], rng=3), _ritz,
         lambda A, lam: {"ritz": lam, "mass": 1.0}, {"ritz": (1e-11, 0.0)}),
    Case("eigsh-k=n", lambda A: eigsh(A, A.shape[0], which="SA"), _eigenvalues,
         lambda A, lam: {"eigenvalues": lam}, extra=_no_restarts_small_residuals),
    Case("eigsh-k=n-1", lambda A: eigsh(A, A.shape[0] - 1, which="BE", tol=1e-12, rng=0),
         _eigenvalues, lambda A, lam: {"eigenvalues": _both_ends(lam, lam.size - 1)},
         {"eigenvalues": (1e-13, 0.0)}, extra=_no_restarts_small_residuals, says_exact=False),
    Case("trace_function", lambda A: trace_function(A, np.sqrt, num_steps=A.shape[0]),
         _estimate, lambda A, lam: {"value": np.sqrt(lam).sum()}),
    Case("logdet", lambda A: logdet(A, num_steps=500), _estimate,
         lambda A, lam: {"value": np.log(lam).sum()}),
    Case("density-slq", lambda A: density(A, num_steps=A.shape[0]), _measure,
         lambda A, lam: {"nodes": lam, "weights": np.full(lam.size, 1.0 / lam.size)},
         {"nodes": (1e-12, 1e-12)}),
]


@pytest.fixture(params=EXACT, ids=str)
def exact_case(request):
    return request.param


def test_exact_at_full_budget(exact_case, spd_matrix):
    A, lam = spd_matrix
    check_exact(exact_case, A, lam)


# ---------------------------------------------------------------- torch equals numpy
TORCH = [
    *[Case(f"trace-{m}", lambda A, m=m: trace(psd(A), 20, method=m,
                                               rng=same_probes(11)),
           lambda r: {"value": r.value, "stderr": r.stderr},
           tolerances={"value": (1e-10, 0.0), "stderr": (1e-7, 0.0)}) for m in TRACE_METHODS],
    *[Case(f"diagonal-{m}", lambda A, m=m: diagonal(A, 20, method=m, rng=same_probes(12)),
           lambda r: {"value": r.value, "stderr": r.stderr},
           tolerances={"value": (1e-9, 1e-13), "stderr": (1e-7, 1e-13)})
      for m in DIAGONAL_METHODS],
    Case("lanczos", lambda A: lanczos(A, 30, rng=same_probes(5)),
         lambda r: {"alpha": r.alpha, "beta": r.beta},
         tolerances={"alpha": (1e-10, 0.0), "beta": (1e-10, 0.0)}, device_attr="basis"),
    *[Case(f"eigsh-b{b}", lambda A, b=b: eigsh(A, 3, tol=1e-10, rng=same_probes(0),
                                                block_size=b),
           _eigenvalues, tolerances={"eigenvalues": (1e-10, 0.0)}, device_attr="eigenvectors")
      for b in (1, 2)],
    Case("eigsh-k=n", lambda A: eigsh(A, A.shape[0], which="BE"), _eigenvalues,
         tolerances={"eigenvalues": (1e-10, 1e-14)}, device_attr="eigenvectors"),
    Case("logdet", lambda A: logdet(A, num_probes=5, num_steps=15, reorth="full",
                                    rng=same_probes(3)),
         _estimate, tolerances={"value": (1e-10, 0.0)}),
    Case("trace_function", lambda A: trace_function(A, np.sqrt, num_probes=4, num_steps=12,
                                                    reorth="full", rng=same_probes(6)),
         _estimate, tolerances={"value": (1e-10, 0.0)}),
    *[Case(f"density-{m}", lambda A, m=m: density(A, method=m, num_probes=3, num_steps=20,
                                                  rng=same_probes(4)),
           lambda r: {"rho": r.rho}, tolerances={"rho": (1e-8, 1e-10)})
      for m in ("slq", "kpm")],
]


@pytest.fixture(params=TORCH, ids=str)
def torch_case(request):
    return request.param


@pytest.fixture(scope="module")
def decaying():
    """60 x 60 positive definite, eigenvalues i^-1.5."""
    return matrix_from_eigenvalues(1.0 / np.arange(1, 61) ** 1.5, rng=5)


def test_torch_matches_numpy(torch_case, decaying):
    check_torch_matches_numpy(torch_case, decaying)


SEEDED = [("trace", m, lambda A, m=m: trace(psd(A), 12, method=m, rng=11), np.trace)
          for m in TRACE_METHODS] + [
          ("diagonal", m, lambda A, m=m: diagonal(A, 12, method=m, rng=12), np.diag)
          for m in DIAGONAL_METHODS] + [
          ("logdet", "slq", lambda A: logdet(A, rtol=0.5, num_probes=6, num_steps=20, rng=3),
           lambda A: np.linalg.slogdet(A)[1])]


@pytest.mark.parametrize("what,method,run,truth", SEEDED, ids=[f"{c[0]}-{c[1]}" for c in SEEDED])
def test_integer_seed_each_framework_reproducible_and_covering(what, method, run, truth,
                                                                 decaying):
    # an integer seed: numpy's stream for the array, torch's for the tensor; each run
    # bit-reproducible, each estimate covering the dense truth within its error bar
    torch = pytest.importorskip("torch")
    want = truth(decaying)
    for A in (decaying, torch.from_numpy(decaying)):
        a, b = run(A), run(A)
        np.testing.assert_array_equal(a.value, b.value)
        err = np.linalg.norm(np.atleast_1d(np.asarray(a.value) - want))
        se = np.linalg.norm(np.atleast_1d(a.stderr))  # a diagonal: over its entries
        assert 0 < se and err <= 3 * se, (what, method, type(A))


@pytest.mark.parametrize("method", TRACE_METHODS)
def test_float32_torch_close_to_float64_numpy(method, decaying):
    # numpy's probes of a seed are the same in float32 and float64 (up to rounding);
    # torch's float32 probes are those a float32 numpy operator gets from the same
    # torch generator
    torch = pytest.importorskip("torch")
    a = trace(psd(decaying), 20, method=method, rng=11)
    b = trace(psd(decaying.astype(np.float32)), 20, method=method, rng=11)
    np.testing.assert_allclose(b.value, a.value, rtol=1e-3)
    c = trace(as_operator(torch.from_numpy(decaying).float(), psd=True), 20, method=method,
              rng=same_probes(11))
    d = trace(psd(decaying.astype(np.float32)), 20, method=method, rng=same_probes(11))
    np.testing.assert_allclose(c.value, d.value, rtol=1e-4)
