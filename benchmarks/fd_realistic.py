"""The realistic free-decompression suite: matrices users have, with exact spectra.

Eight symmetric matrices of N <= 4096 built from data that ships with the bench
dependencies (sklearn's digits, small MLPs trained in seconds with torch on CPU,
random features, a road-like planar graph) and a spiked Wishart control. Exact
eigenvalues by dense ``eigvalsh``. Matrices and eigenvalues are cached in
``benchmarks/.cache/`` (gitignored): delete it to rebuild.

Cases (``name``: N, what it is)

* ``ntk``: 1797, empirical NTK Gram (traced over the 10 logits) of an MLP 64-40-10
  trained on the digits;
* ``hessian``: 3010, loss Hessian of that MLP over all its parameters (a random
  principal block = the Hessian of a random parameter subset);
* ``ggn``: 3010, its Gauss-Newton matrix (cross-entropy, mean over the digits);
* ``relu_gram``: 1797, Gram ``H H^T / 256`` of the ReLU activations of an MLP
  64-256-10 (rank <= 256);
* ``rbf``: 1797, RBF kernel of the standardised digits (median-heuristic width);
* ``rff_cov``: 2048, covariance ``Z^T Z / 1797`` of 2048 random Fourier features;
* ``road``: normalized Laplacian of a road graph: pygsp's Minnesota graph (2642 nodes)
  when pygsp is installed, else a planar road-like graph (Euclidean minimum spanning
  tree of 2500 random points plus 12% of the remaining Delaunay edges; mean degree
  about 2.5, like Minnesota) -- the source is in the case's ``note``;
* ``spiked``: 2048, Wishart ``X X^T / m`` (c = N/m = 0.5) with population spikes 15, 30, 60.

``python benchmarks/fd_realistic.py`` builds (or loads) every case and prints N, the
spread of the spectrum and the build time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
CASES = ("ntk", "hessian", "ggn", "relu_gram", "rbf", "rff_cov", "road", "spiked")
#: Cases whose matrix is PSD (kernel-like); the top-eigenvalue target applies to these.
PSD = frozenset({"ntk", "ggn", "relu_gram", "rbf", "rff_cov", "road", "spiked"})
VERSION = 1  # bump to invalidate the cache when a construction changes


@dataclass(frozen=True)
class Case:
    """One realistic matrix with its exact spectrum."""

    name: str
    matrix: np.ndarray
    eigenvalues: np.ndarray
    note: str
    graph: object = None  # scipy sparse matrix for sparse-graph cases

    @property
    def size(self) -> int:
        return self.matrix.shape[0]


# ------------------------------------------------------------------------ data and nets
def _digits():
    from sklearn.datasets import load_digits

    X = load_digits().data
    y = load_digits().target
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    return X, y


def _train_mlp(widths, seed, epochs=300):
    """An MLP (ReLU) trained full-batch with Adam on the digits; returns (model, X, y)."""
    import torch

    X, y = _digits()
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=False):
        layers += [torch.nn.Linear(a, b, dtype=torch.float64), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    Xt, yt = torch.tensor(X), torch.tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        loss.backward()
        opt.step()
    return model, Xt, yt


def _flat_functional(model):
    """``f(theta, x)``: the model as a function of its flattened parameters."""
    import torch
    from torch.func import functional_call

    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(th, x):
        parts = torch.split(th, sizes)
        params = {k: v.reshape(s) for k, v, s in zip(names, parts, shapes, strict=True)}
        return functional_call(model, params, (x,))

    return f, theta


def _jacobians(f, theta, X, chunk=256):
    """Per-sample Jacobians of the logits, shape (samples, outputs, params)."""
    import torch
    from torch.func import jacrev, vmap

    jac = vmap(jacrev(lambda th, x: f(th, x[None])[0]), in_dims=(None, 0))
    return torch.cat([jac(theta, X[i:i + chunk]) for i in range(0, X.shape[0], chunk)])


def _mlp_matrices():
    """NTK Gram, loss Hessian and GGN of the trained MLP 64-40-10."""
    import torch
    from torch.func import grad, jvp, vmap

    model, X, y = _train_mlp((64, 40, 10), seed=0)
    f, theta = _flat_functional(model)
    J = _jacobians(f, theta, X)                                 # (S, 10, P)
    ntk = torch.einsum("iap,jap->ij", J, J).numpy()
    with torch.no_grad():
        p = torch.softmax(f(theta, X), dim=1)                   # (S, 10)
    # H_i = diag(p) - p p^T = M M^T with M = diag(sqrt p) - p sqrt(p)^T
    sq = p.sqrt()
    M = torch.diag_embed(sq) - p[:, :, None] * sq[:, None, :]
    R = torch.einsum("iab,iap->ibp", M, J).reshape(-1, theta.numel())
    ggn = (R.T @ R / X.shape[0]).numpy()

    def loss(th):
        return torch.nn.functional.cross_entropy(f(th, X), y)

    g = grad(loss)
    hvp = vmap(lambda v: jvp(g, (theta,), (v,))[1])
    eye = torch.eye(theta.numel(), dtype=torch.float64)
    hess = torch.cat([hvp(eye[i:i + 128]) for i in range(0, theta.numel(), 128)]).numpy()
    return ntk, hess, ggn


def _relu_gram():
    import torch

    model, X, _ = _train_mlp((64, 256, 10), seed=1)
    with torch.no_grad():
        H = torch.relu(model[0](X)).numpy()
    return H @ H.T / H.shape[1]


def _rbf():
    X, _ = _digits()
    sq = np.sum(X**2, 1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0)
    return np.exp(-D / (2 * np.median(D)))


def _rff_cov(features=2048):
    X, _ = _digits()
    rng = np.random.default_rng(11)
    sq = np.sum(X**2, 1)
    width = np.sqrt(np.median(np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0)))
    W = rng.standard_normal((X.shape[1], features)) / width
    Z = np.sqrt(2.0 / features) * np.cos(X @ W + rng.uniform(0, 2 * np.pi, features))
    return Z.T @ Z / X.shape[0]


def road_graph(num_nodes: int = 2500, extra: float = 0.12, seed: int = 7):
    """Adjacency of a planar road-like graph and a description of its source.

    pygsp's Minnesota road graph when pygsp is installed; otherwise the Euclidean
    minimum spanning tree of ``num_nodes`` uniform points in the unit square plus a
    random ``extra`` fraction of the other Delaunay edges (connected and planar; the
    measured mean degree is in the description).
    """
    import scipy.sparse as sp

    try:
        import pygsp

        A = sp.csr_array(pygsp.graphs.Minnesota().W, dtype=float)
        A = ((A + A.T) > 0).astype(float)
        src = "pygsp Minnesota road graph"
    except ImportError:
        from scipy.sparse.csgraph import minimum_spanning_tree
        from scipy.spatial import Delaunay

        rng = np.random.default_rng(seed)
        pts = rng.random((num_nodes, 2))
        tri = Delaunay(pts).simplices
        e = np.unique(np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]),
                              axis=1), axis=0)
        length = np.linalg.norm(pts[e[:, 0]] - pts[e[:, 1]], axis=1)
        D = sp.coo_array((length, (e[:, 0], e[:, 1])), shape=(num_nodes,) * 2).tocsr()
        T = minimum_spanning_tree(D)
        T = ((T + T.T) > 0).astype(float)
        keep = rng.random(e.shape[0]) < extra
        X = sp.coo_array((np.ones(keep.sum()), (e[keep, 0], e[keep, 1])),
                         shape=(num_nodes,) * 2).tocsr()
        A = (((T + X + X.T) > 0).astype(float)).tocsr()
        src = "planar road-like graph (Delaunay MST + 12% of other edges; pygsp not installed)"
    deg = np.asarray(A.sum(axis=1)).ravel()
    keep = np.flatnonzero(deg > 0)
    A = A[keep][:, keep]
    return A, f"{src}, {A.shape[0]} nodes, mean degree {A.sum() / A.shape[0]:.2f}"


def _road():
    import scipy.sparse as sp

    A, note = road_graph()
    d = np.asarray(A.sum(axis=1)).ravel()
    s = sp.diags_array(1.0 / np.sqrt(d))
    L = (sp.eye_array(A.shape[0]) - s @ A @ s).tocsr()
    return L, note


def _spiked(N=2048, c=0.5):
    rng = np.random.default_rng(5)
    m = round(N / c)
    scale = np.ones(N)
    scale[:3] = np.sqrt([15.0, 30.0, 60.0])
    X = rng.standard_normal((N, m)) * scale[:, None]
    return X @ X.T / m


# ------------------------------------------------------------------------------ cases
_NOTES = {
    "ntk": "NTK Gram (traced over logits), MLP 64-40-10 trained on digits",
    "hessian": "loss Hessian, all 3010 parameters of the MLP 64-40-10",
    "ggn": "Gauss-Newton matrix of the MLP 64-40-10 (cross-entropy)",
    "relu_gram": "Gram of the 256 ReLU activations of an MLP 64-256-10, digits",
    "rbf": "RBF kernel of the standardised digits (median width)",
    "rff_cov": "covariance of 2048 random Fourier features of the digits",
    "spiked": "spiked Wishart c=0.5, population spikes 15, 30, 60",
}


_MLP = ("ntk", "hessian", "ggn")


def _build(name: str, cache: Path):
    """(matrix, note, graph) of one case, computed (the MLP trio is cached together)."""
    if name in _MLP:
        mats = dict(zip(_MLP, _mlp_matrices(), strict=True))
        for other in _MLP:
            if other != name:
                _save(cache, other, mats[other], _NOTES[other])
        return mats[name], _NOTES[name], None
    if name == "road":
        L, note = _road()
        return L.toarray(), "normalized Laplacian, " + note, L
    build = {"relu_gram": _relu_gram, "rbf": _rbf, "rff_cov": _rff_cov, "spiked": _spiked}
    return build[name](), _NOTES[name], None


def load_case(name: str, cache: Path = CACHE) -> Case:
    """The case ``name`` (one of :data:`CASES`), from the cache or built and cached."""
    import scipy.sparse as sp

    if name not in CASES:
        raise ValueError(f"unknown case {name!r}; the cases are {', '.join(CASES)}")
    path = cache / f"{name}-v{VERSION}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        graph = sp.csr_array(z["matrix"]) if name == "road" else None
        return Case(name, z["matrix"], z["eigenvalues"], str(z["note"]), graph)
    A, note, graph = _build(name, cache)
    A, eigs = _save(cache, name, A, note)
    return Case(name, A, eigs, note, graph)


def _save(cache: Path, name: str, A: np.ndarray, note: str):
    """Symmetrise ``A``, compute its exact eigenvalues and cache both."""
    A = 0.5 * (A + A.T)
    eigs = np.linalg.eigvalsh(A)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cache / f"{name}-v{VERSION}.npz", matrix=A, eigenvalues=eigs, note=np.array(note))
    return A, eigs


def main(argv: list[str]) -> None:
    names = [a for a in argv if not a.startswith("-")] or list(CASES)
    for name in names:
        t = time.perf_counter()
        c = load_case(name)
        e = c.eigenvalues
        small = np.mean(np.abs(e) < 1e-4 * np.abs(e).max())
        print(f"{name:10s} N={c.size:5d} min={e[0]:+.3e} max={e[-1]:.3e} "
              f"top share of trace={e[-1] / e.sum():.3f} |x|<1e-4 max: {100 * small:.0f}% "
              f"({time.perf_counter() - t:.1f} s) {c.note}")


if __name__ == "__main__":
    main(sys.argv[1:])
