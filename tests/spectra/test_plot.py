import numpy as np
import pytest

from spectra import density
from spectra.testing import matrix_from_eigenvalues

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def test_density_plot_draws_curve_nodes_and_reference(tmp_path):
    import matplotlib.pyplot as plt

    from spectra import plot

    lam = np.linspace(0, 1, 200)
    den = density(matrix_from_eigenvalues(lam, rng=0), num_probes=3, num_steps=20, rng=0)
    ax = plot.density(den, reference=lam, nodes="rug")
    xs = [line.get_xdata() for line in ax.get_lines()]
    assert any(np.array_equal(x, den.x) for x in xs)
    assert any(np.array_equal(x, den.nodes) for x in xs)
    assert len(ax.patches) > 0  # histogram bars
    assert ax.get_xlabel() and ax.get_ylabel()
    ax.figure.savefig(tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 1000
    ax2 = plot.density(den, nodes="stems", band=False)
    assert len(ax2.figure.axes) == 2
    plt.close("all")
    with pytest.raises(TypeError, match="SpectralDensity"):
        plot.density(lam)
