"""freedecomp.samplers.graph_patches: connected breadth-first patches of a sparse graph."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from freedecomp.checks import sparse_block_findings
from freedecomp.samplers import graph_patches
from spectra.distances import wasserstein1


def _grid(k):
    """Adjacency of the k x k grid graph."""
    path = sp.diags_array([np.ones(k - 1), np.ones(k - 1)], offsets=[-1, 1])
    eye = sp.eye_array(k)
    return (sp.kron(path, eye) + sp.kron(eye, path)).tocsr()


def _normalized_laplacian(A):
    d = np.asarray(A.sum(axis=1)).ravel()
    s = sp.diags_array(1.0 / np.sqrt(d))
    return (sp.eye_array(A.shape[0]) - s @ A @ s).tocsr()


def _components(A):
    return connected_components(sp.csr_array(np.abs(A) > 0), directed=False)


def test_patches_are_connected_principal_blocks():
    L = _normalized_laplacian(_grid(30))
    blocks, idx = graph_patches(L, 120, 4, rng=0, return_indices=True)
    assert blocks.shape == (4, 120, 120) and idx.shape == (4, 120)
    for B, i in zip(blocks, idx, strict=True):
        assert np.all(np.diff(i) > 0)  # sorted, distinct
        np.testing.assert_array_equal(B, L[i][:, i].toarray())
        assert _components(B)[0] == 1
    assert len({tuple(i) for i in idx}) == 4  # independent seeds


def test_path_patches_are_intervals_and_reproducible():
    path = sp.diags_array([np.ones(199), np.ones(199)], offsets=[-1, 1])
    a = graph_patches(path, 17, 5, rng=np.random.default_rng(3), return_indices=True)[1]
    b = graph_patches(path, 17, 5, rng=np.random.default_rng(3), return_indices=True)[1]
    np.testing.assert_array_equal(a, b)
    assert np.all(a[:, -1] - a[:, 0] == 16)


def test_disconnected_graph_and_patch_larger_than_components():
    # 6 components: paths of 10 nodes; a patch of 25 = two whole paths + a piece of 5
    A = sp.block_diag([sp.diags_array([np.ones(9), np.ones(9)], offsets=[-1, 1])] * 6).tocsr()
    blocks, idx = graph_patches(A, 25, 6, rng=1, return_indices=True)
    for B, i in zip(blocks, idx, strict=True):
        comp = i // 10
        counts = np.bincount(comp, minlength=6)
        assert sorted(counts[counts > 0]) == [5, 10, 10]
        piece = i[comp == np.flatnonzero(counts == 5)[0]]
        assert piece[-1] - piece[0] == 4  # the partial one is connected
        np.testing.assert_array_equal(B, A[i][:, i].toarray())
    full = graph_patches(A, 60, 1, rng=2)[0]
    np.testing.assert_array_equal(full, A.toarray())  # n = N: the whole matrix


def test_isolated_nodes_and_dense_input():
    A = np.zeros((8, 8))
    A[0, 1] = A[1, 0] = 1.0
    blocks, idx = graph_patches(A, 3, 10, rng=4, return_indices=True)
    for i in idx:
        assert len(set(i)) == 3
    assert blocks.shape == (10, 3, 3)


def test_seeds_cover_the_graph_uniformly():
    N, n, reps = 60, 6, 600
    ring = sp.diags_array([np.ones(N - 1), np.ones(N - 1)], offsets=[-1, 1]).tolil()
    ring[0, N - 1] = ring[N - 1, 0] = 1.0  # vertex-transitive: every node equally likely
    idx = graph_patches(ring.tocsr(), n, reps, rng=5, return_indices=True)[1]
    freq = np.bincount(idx.ravel(), minlength=N) / reps
    expected = n / N
    se = np.sqrt(expected * (1 - expected) / reps)
    assert np.all(np.abs(freq - expected) < 6 * se)


def test_patches_estimate_the_law_where_random_subsets_do_not():
    """On a grid's normalised Laplacian, pooled patch eigenvalues are close to the truth;
    random node subsets are flagged and far (most of their eigenvalues are exactly 1)."""
    L = _normalized_laplacian(_grid(48))
    truth = np.linalg.eigvalsh(L.toarray())
    sd = truth.std()
    n = L.shape[0] // 8
    patches = graph_patches(L, n, 4, rng=6)
    w_patch = wasserstein1(np.concatenate([np.linalg.eigvalsh(B) for B in patches]), truth)
    rng = np.random.default_rng(7)
    i = np.sort(rng.choice(L.shape[0], n, replace=False))
    B = L[i][:, i].toarray()
    w_random = wasserstein1(np.linalg.eigvalsh(B), truth)
    assert w_patch < 0.1 * sd
    assert w_patch < w_random / 3
    assert {f.name for f in sparse_block_findings(B)} == {"isolated_rows", "degree_atom"}
    assert sparse_block_findings(patches[0]) == []


@pytest.mark.parametrize(("args", "kwargs", "err", "match"), [
    (([[0, 1], [1, 0]], 1), {}, TypeError, "scipy sparse"),
    ((np.ones((2, 3)), 1), {}, ValueError, "square"),
    ((np.array([[0, np.nan], [np.nan, 0]]), 1), {}, ValueError, "non-finite"),
    ((np.array([[0.0, 1.0], [0.0, 0.0]]), 1), {}, ValueError, "not symmetric"),
    ((np.eye(4), 0), {}, ValueError, "n must be an integer in \\[1, 4\\]"),
    ((np.eye(4), 5), {}, ValueError, "N = 4"),
    ((np.eye(4), 2.0), {}, TypeError, "n must be an integer"),
    ((np.eye(4), 2, 0), {}, ValueError, "num_blocks"),
    ((np.eye(4), 2), {"rng": "seed"}, TypeError, "rng"),
    ((np.eye(4), 2), {"return_indices": 1}, TypeError, "return_indices"),
])
def test_bad_inputs(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        graph_patches(*args, **kwargs)
