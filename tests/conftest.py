import numpy as np
import pytest

from spectra.testing import matrix_from_eigenvalues


@pytest.fixture
def spd_matrix():
    """A 120 x 120 SPD matrix with a prescribed spectrum in [1, 10]."""
    lam = np.linspace(1.0, 10.0, 120)
    return matrix_from_eigenvalues(lam, rng=11), lam


def torch_or_skip():
    return pytest.importorskip("torch")
