"""freedecomp.checks: each check fires on a constructed breach and is quiet on a dense block."""

import numpy as np
import pytest
import scipy.sparse as sp

from freedecomp import checks
from freedecomp.laws import MarchenkoPastur, Wigner


def _normalized_laplacian(A):
    d = np.asarray(A.sum(axis=1)).ravel()
    s = sp.diags_array(1.0 / np.sqrt(d))
    return (sp.eye_array(A.shape[0]) - s @ A @ s).tocsr()


def _ring_with_chords(N, rng):
    """A sparse connected graph of mean degree about 3 (ring plus random chords)."""
    i = np.arange(N)
    rows = np.concatenate([i, rng.integers(0, N, N // 2)])
    cols = np.concatenate([(i + 1) % N, rng.integers(0, N, N // 2)])
    keep = rows != cols
    A = sp.coo_array((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(N, N)).tocsr()
    A = ((A + A.T) > 0).astype(float)
    return A


@pytest.fixture
def dense_block():
    return Wigner(1.0).sample_matrix(200, np.random.default_rng(0))


def test_quiet_on_dense_random_blocks(dense_block):
    W = MarchenkoPastur(0.5).sample_matrix(300, np.random.default_rng(1))[:150, :150]
    for B in (dense_block, W):
        assert checks.isolated_fraction(B) == 0.0
        assert checks.isolated_rows(B) is None
        assert checks.degree_atom(B) is None
        assert checks.atoms(np.linalg.eigvalsh(B)) == []
        assert checks.sparse_block_findings(B) == []


def test_random_node_subset_of_sparse_graph_is_flagged():
    rng = np.random.default_rng(2)
    L = _normalized_laplacian(_ring_with_chords(2000, rng))
    idx = np.sort(rng.choice(2000, 250, replace=False))
    B = L[idx][:, idx]
    frac = checks.isolated_fraction(B)
    assert frac > 0.5  # about (7/8)^3 = 0.67 of the nodes lose all their neighbours
    found = {f.name: f for f in checks.sparse_block_findings(B)}
    assert set(found) == {"isolated_rows", "degree_atom"}
    assert found["isolated_rows"].figure == pytest.approx(frac)
    # every isolated row gives an eigenvalue exactly 1: the atom holds at least them
    assert found["degree_atom"].figure >= frac
    assert "graph_patches" in found["isolated_rows"].message
    assert "1" in found["degree_atom"].message
    # the same findings from the dense copy of the block
    dense = {f.name: f.figure for f in checks.sparse_block_findings(B.toarray())}
    assert dense == {k: f.figure for k, f in found.items()}


def test_full_sparse_graph_is_not_flagged_for_isolation():
    """The whole (connected) graph has no isolated node and only a small atom at 1."""
    L = _normalized_laplacian(_ring_with_chords(400, np.random.default_rng(3)))
    assert checks.isolated_fraction(L) == 0.0
    assert checks.isolated_rows(L) is None
    assert checks.degree_atom(L) is None


def test_isolated_rows_limit_and_tolerance():
    B = np.ones((20, 20))
    B[:3, :] = B[:, :3] = 0.0
    np.fill_diagonal(B, 2.0)
    assert checks.isolated_fraction(B) == pytest.approx(0.15)
    f = checks.isolated_rows(B, max_fraction=0.1)
    assert f is not None and f.name == "isolated_rows" and f.figure == pytest.approx(0.15)
    assert checks.isolated_rows(B, max_fraction=0.2) is None
    B[0, 5] = B[5, 0] = 1e-12  # below rtol * max|B|: still isolated at rtol=1e-9
    assert checks.isolated_fraction(B) == pytest.approx(0.10)
    assert checks.isolated_fraction(B, rtol=1e-9) == pytest.approx(0.15)


def test_degree_atom_of_an_adjacency_is_at_zero():
    A = np.zeros((30, 30))
    A[0, 1] = A[1, 0] = A[2, 3] = A[3, 2] = 1.0
    f = checks.degree_atom(A)
    assert f is not None and f.figure == pytest.approx(26 / 30)
    assert "value 0" in f.message


def test_atoms_finds_masses_and_ignores_a_continuous_sample():
    rng = np.random.default_rng(4)
    e = np.concatenate([np.zeros(60), np.full(25, 2.0) + 1e-13, rng.uniform(0, 3, 115)])
    found = checks.atoms(e, min_fraction=0.05)
    assert [round(loc, 6) for loc, _ in found] == [0.0, 2.0]
    assert [m for _, m in found] == pytest.approx([0.3, 0.125])
    assert checks.atoms(rng.uniform(0, 3, 4000)) == []
    assert checks.atoms(e, min_fraction=0.2) == [(0.0, 0.3)]
    assert checks.atoms(np.zeros(5)) == [(0.0, 1.0)]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="square"):
        checks.sparse_block_findings(np.ones((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        checks.isolated_fraction(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(TypeError, match="square array"):
        checks.isolated_rows("abc")
    with pytest.raises(ValueError, match="max_fraction"):
        checks.isolated_rows(np.eye(3), max_fraction=2.0)
    with pytest.raises(ValueError, match="finite"):
        checks.atoms([1.0, np.inf])
    with pytest.raises(ValueError, match="empty"):
        checks.atoms([])


def test_finding_prints_name_and_message():
    f = checks.Finding("isolated_rows", 0.5, "half the rows")
    assert str(f) == "isolated_rows: half the rows"
    with pytest.raises(AttributeError):
        f.figure = 0.1
