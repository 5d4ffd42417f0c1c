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
    assert any(np.array_equal(x, den.nodes) for x in xs) or den.deflated.size
    assert len(ax.patches) > 0  # histogram bars
    assert ax.get_xlabel() and ax.get_ylabel()
    ax.figure.savefig(tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 1000
    ax2 = plot.density(den, nodes="stems", band=False)
    assert len(ax2.figure.axes) == 2
    plt.close("all")
    with pytest.raises(TypeError, match="SpectralDensity"):
        plot.density(lam)


def _outlier_layers():
    rng = np.random.default_rng(0)
    out = {}
    for i, (name, top) in enumerate([("fc1", 40.0), ("fc2", 15.0), ("head", 80.0)]):
        lam = np.r_[rng.normal(0.0, 0.3, 300), top, top / 2]
        out[name] = (density(matrix_from_eigenvalues(lam, rng=i), num_probes=5, num_steps=40,
                             rng=i), lam)
    return out


def test_per_layer_small_multiples_log_scale_and_deflated_outliers_once(tmp_path):
    import matplotlib.pyplot as plt

    from spectra import plot

    layers = _outlier_layers()
    dens = {k: v[0] for k, v in layers.items()}
    assert all(d.deflated.size >= 1 for d in dens.values())  # the outliers were deflated
    axes = plot.density(dens, yscale="log", reference={k: v[1] for k, v in layers.items()},
                        title="per-layer Hessian spectra")
    assert len(axes) == 3 and len(axes[0].figure.axes) == 3
    assert [a.get_title(loc="left") for a in axes] == ["fc1", "fc2", "head"]
    assert all(a.get_yscale() == "log" for a in axes)
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[2])  # one x axis for all
    for a, d in zip(axes, dens.values(), strict=True):
        lines = {ln.get_label(): ln for ln in a.get_lines()}
        rug = lines["quadrature nodes"].get_xdata()
        marks = [ln for k, ln in lines.items() if k.startswith("deflated")][0].get_xdata()
        # every node drawn exactly once: the rug leaves the deflated eigenvalues out
        assert marks.size == d.deflated.size and rug.size + marks.size == d.nodes.size
        np.testing.assert_array_equal(marks, d.deflated)
        np.testing.assert_array_equal(rug, d.nodes[d.deflated.size:])
        assert len(a.patches) > 0  # the reference histogram
    axes[0].figure.savefig(tmp_path / "layers.png")
    assert (tmp_path / "layers.png").stat().st_size > 5000
    plt.close("all")


def test_per_layer_ridge_and_errors():
    import matplotlib.pyplot as plt

    from spectra import plot

    dens = {k: v[0] for k, v in _outlier_layers().items()}
    ax = plot.density(dens, layout="ridge")
    ticks = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()),
                     strict=True))
    assert ticks == {2.0: "fc1", 1.0: "fc2", 0.0: "head"}  # first layer on top
    curves = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", "", None)]
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert len(curves) == 3 and len(ax.figure.axes) == 1
    assert [m.get_xdata().size for m in marks] == [d.deflated.size for d in dens.values()]
    with pytest.raises(ValueError, match="ridge plot has no log scale"):
        plot.density(dens, layout="ridge", yscale="log")
    with pytest.raises(ValueError, match="'linear', 'log'"):
        plot.density(dens["fc1"], yscale="symlog")
    with pytest.raises(ValueError, match="empty"):
        plot.density({})
    with pytest.raises(TypeError, match="layer 'x'"):
        plot.density({"x": np.ones(3)})
    fig, axs = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="2 Axes for 3 layers"):
        plot.density(dens, axs)
    plt.close("all")


def test_single_density_log_scale_keeps_outliers_visible():
    import matplotlib.pyplot as plt

    from spectra import plot

    den = _outlier_layers()["head"][0]
    ax = plot.density(den, yscale="log")
    curve = [ln for ln in ax.get_lines() if ln.get_label().startswith("SLQ")][0]
    y = np.asarray(curve.get_ydata())
    assert ax.get_yscale() == "log" and np.all(y > 0)
    at = np.abs(np.asarray(curve.get_xdata()) - 80.0).argmin()
    assert y[at] > ax.get_ylim()[0]  # the outlier's bump lies above the floor
    plt.close("all")


def test_plot_of_hessian_per_layer_density():
    torch = pytest.importorskip("torch")
    import matplotlib.pyplot as plt

    import hessian
    from spectra import plot

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    X, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    res = hessian.density(model, torch.nn.CrossEntropyLoss(), (X, y), per_layer=True,
                          num_probes=2, num_steps=10, rng=0, progress=False)
    axes = plot.density(res)
    assert len(axes) == len(res) >= 2
    plt.close("all")
