"""SpectrumMonitor: records against dense references, history on disk, resume, errors, plot."""

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessian_refs import Dense, data, mlp  # noqa: E402

import hessian  # noqa: E402
from hessian.training.monitor import SpectrumRecord  # noqa: E402

CE = torch.nn.CrossEntropyLoss()
P = 51  # parameters of hessian_refs.mlp (4 -> 6 -> 3)


def sgd_step(model, X, y, lr=0.3):
    model.zero_grad()
    CE(model(X), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad


def train(mon, steps, seed=0, lr=0.3, model=None, numbered=False):
    """Full-batch gradient descent (deterministic), calling the monitor every step
    (``numbered``: with the step numbers 0, 1, ..., as a loop replayed from the start)."""
    X, y = data("mlp", 24)
    model = mlp(seed) if model is None else model
    for t in range(steps):
        mon.step(t) if numbered else mon.step()
        sgd_step(model, X, y, lr)
    return model


def monitor(model, path=None, **kw):
    X, y = data("mlp", 24)
    opts = dict(every=2, num_probes=3, num_steps=12, trace_matvecs=12, rng=5, tol=1e-10)
    opts.update(kw)
    return hessian.SpectrumMonitor(model, CE, (X, y), path=path, **opts)


def same_records(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        assert ra.to_dict() == rb.to_dict()


def test_records_match_dense_reference():
    model = mlp(0)
    X, y = data("mlp", 24)
    mon = hessian.SpectrumMonitor(model, CE, (X, y), what=("hessian", "ggn"), k=2,
                                  num_steps=P, trace_matvecs=P, rng=0, tol=1e-10)
    for step in (0, 1):
        recs = mon.record(step)
        H = Dense(model).hessian(CE, [(X, y)]).numpy()
        G = Dense(model).ggn(CE, X, y).numpy()
        for kind, A in (("hessian", H), ("ggn", G)):
            lam = np.linalg.eigvalsh(A)
            r = recs[kind]
            np.testing.assert_allclose(r.eigenvalues, lam[::-1][:2], rtol=1e-8)
            assert r.converged and r.warm_start == (step == 1)
            np.testing.assert_allclose(r.trace, np.trace(A), rtol=1e-9)
            # num_steps >= P: the quadrature measure is the exact spectrum, weights 1/P
            np.testing.assert_allclose(np.sort(r.nodes), lam, atol=1e-9)
            np.testing.assert_allclose(r.weights, np.full(P, 1 / P), rtol=1e-12)
            assert r.num_matvecs == r.eig_matvecs + r.trace_matvecs + r.density_matvecs
        assert recs["hessian"].loss == pytest.approx(float(CE(model(X), y).detach()),
                                                          rel=1e-12)
        sgd_step(model, X, y)
    h = mon.histories["hessian"]
    assert h.steps.tolist() == [0, 1] and h.top_eigenvalues.shape == (2, 2)
    # cell averages keep the mass of peaks narrower than a grid cell: each row sums to one
    # (the default grid spans every node with three widths to spare)
    cells = np.diff(np.concatenate([[1.5 * h.grid[0] - 0.5 * h.grid[1]],
                                    0.5 * (h.grid[1:] + h.grid[:-1]),
                                    [1.5 * h.grid[-1] - 0.5 * h.grid[-2]]]))
    np.testing.assert_allclose(h.densities @ cells, 1.0, rtol=1e-3)
    assert np.min(h.records[0].widths) < 0.1 * np.min(cells)  # such narrow peaks exist
    with pytest.raises(ValueError, match="histories"):
        _ = mon.history


def test_ntk_record_matches_kernel_eigenvalues():
    model = mlp(1)
    X, _ = data("mlp", 10)
    mon = hessian.SpectrumMonitor(model, None, X, what="ntk", k=1, num_steps=30,
                                  trace_matvecs=30, rng=0, tol=1e-10)
    r = mon.record(0)["ntk"]
    J = Dense(model).jacobian(X).numpy().reshape(30, -1)
    lam = np.linalg.eigvalsh(J @ J.T)
    np.testing.assert_allclose(r.eigenvalues, lam[-1:], rtol=1e-8)
    np.testing.assert_allclose(r.trace, lam.sum(), rtol=1e-9)
    assert r.loss is None


def test_probes_are_fixed_and_warm_start_keeps_accuracy():
    model = mlp(2)
    mon = monitor(model, warm_start=True)
    a, b = mon.record(0)["hessian"], mon.record(1)["hessian"]  # same parameters
    assert not a.warm_start and b.warm_start
    np.testing.assert_allclose(a.nodes, b.nodes, rtol=1e-12, atol=1e-12)  # same SLQ probes
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-9, atol=1e-15)
    assert a.trace == pytest.approx(b.trace, rel=1e-12)
    np.testing.assert_allclose(b.eigenvalues, a.eigenvalues, rtol=1e-9)
    # a start vector that is already the eigenvector converges in fewer products
    assert b.eig_matvecs < a.eig_matvecs


def test_schedule_skips_and_step_argument():
    mon = monitor(mlp(0), every=3)
    out = [mon.step() for _ in range(7)]
    assert [i for i, o in enumerate(out) if o is not None] == [0, 3, 6]
    assert mon.next_step == 7
    assert mon.step(9)["hessian"].step == 9
    assert mon.step(9) is None  # already recorded
    with pytest.raises(ValueError, match="steps must increase"):
        mon.record(5)


def test_history_round_trips_exactly(tmp_path):
    mon = monitor(mlp(3), path=tmp_path)
    train(mon, 7, seed=3)
    h = mon.history
    assert h.steps.tolist() == [0, 2, 4, 6]
    back = hessian.SpectrumHistory.load(tmp_path)
    same_records(back.records, h.records)
    for name in ("steps", "top_eigenvalues", "residual_norms", "trace", "trace_stderr", "loss",
                 "grid", "densities", "num_matvecs", "converged"):
        np.testing.assert_array_equal(getattr(back, name), getattr(h, name), err_msg=name)
    assert back.config["seed"] == 5 and back.kind == "hessian"
    # save() to another place (a file path this time) and back
    f = h.save(tmp_path / "copy" / "h.jsonl")
    same_records(hessian.SpectrumHistory.load(f).records, h.records)


def test_resume_after_crash_loses_one_record(tmp_path):
    mon = monitor(mlp(4), path=tmp_path)
    train(mon, 7, seed=4)  # records 0, 2, 4, 6
    original = mon.history
    file = mon.file
    raw = file.read_bytes()
    file.write_bytes(raw[:-25])  # the crash cut the last record short
    with pytest.warns(UserWarning, match="truncated last line"):
        mon2 = monitor(mlp(4), path=tmp_path)
    assert [r.step for r in mon2.records] == [0, 2, 4]
    assert file.read_bytes() == raw[: raw.rstrip(b"\n").rfind(b"\n") + 1]  # cut cleanly
    assert mon2.next_step == 5  # without numbers, step() would continue after step 4
    train(mon2, 9, seed=4, numbered=True)  # the rerun replays training from the start
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = hessian.SpectrumHistory.load(tmp_path)
    assert h.steps.tolist() == [0, 2, 4, 6, 8]
    same_records(h.records[:3], original.records[:3])
    r6, o6 = h.records[3], original.records[3]
    assert not r6.warm_start and o6.warm_start  # recomputed after the restart
    np.testing.assert_allclose(r6.eigenvalues, o6.eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(r6.nodes, o6.nodes, rtol=1e-12, atol=1e-12)


def test_resume_refuses_other_settings_and_corrupt_files(tmp_path):
    mon = monitor(mlp(0), path=tmp_path)
    mon.record(0)
    with pytest.raises(ValueError, match="num_probes"):
        monitor(mlp(0), path=tmp_path, num_probes=4)
    with pytest.raises(ValueError, match="seed"):
        monitor(mlp(0), path=tmp_path, rng=6)
    resumed = monitor(mlp(0), path=tmp_path, rng=None)  # adopts the file's seed
    assert resumed.seed == 5 and [r.step for r in resumed.records] == [0]
    lines = mon.file.read_text().splitlines()
    mon.file.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        hessian.SpectrumHistory.load(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"format": "something else", "version": 1}) + "\n")
    with pytest.raises(ValueError, match="not a impalpable.spectrum-history"):
        hessian.SpectrumHistory.load(other)
    with pytest.raises(FileNotFoundError):
        hessian.SpectrumHistory.load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="missing the field"):
        SpectrumRecord.from_dict({"step": 1})


def test_nan_stops_with_the_step_number():
    model = mlp(0)
    mon = monitor(model)
    mon.step()
    mon.step()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="training step 2"):
        mon.step()
    # without a loss (NTK) the operator's product check fires; it is chained
    X, _ = data("mlp", 6)
    ntk = hessian.SpectrumMonitor(model, None, X, what="ntk", every=1, num_steps=5,
                                  trace_matvecs=5, rng=0)
    with pytest.raises(ValueError, match="training step 7") as err:
        ntk.record(7)
    assert isinstance(err.value.__cause__, FloatingPointError)
    assert "batch 0" in str(err.value)


def test_model_mode_is_restored():
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Dropout(0.5), torch.nn.Tanh(),
                                torch.nn.Linear(6, 3)).double()
    model.train()
    X, y = data("mlp", 12)
    mon = hessian.SpectrumMonitor(model, CE, (X, y), every=1, num_steps=10,
                                  trace_matvecs=10, rng=0)
    assert mon.step() is not None  # dropout off while recording: deterministic products
    assert model.training and model[1].training


@pytest.mark.parametrize(("kw", "err", "match"), [
    ({"every": 0}, ValueError, "every must be an integer >= 1"),
    ({"every": 2.5}, TypeError, "every must be an integer >= 1"),
    ({"every": True}, TypeError, "every"),
    ({"what": "laplacian"}, ValueError, "what must name curvature kinds"),
    ({"what": ("hessian", "hessian")}, ValueError, "twice"),
    ({"k": 0}, ValueError, "k must be"),
    ({"which": "XX"}, ValueError, "which must be"),
    ({"tol": 0.0}, ValueError, "tol"),
    ({"grid": 1}, ValueError, "at least 2 points"),
    ({"rng": "seed"}, TypeError, "rng must be"),
    ({"dtype_typo": 1}, TypeError, "dtype_typo"),
])
def test_bad_settings(kw, err, match):
    with pytest.raises(err, match=match):
        monitor(mlp(0), **kw)


def test_bad_step_and_missing_data():
    mon = monitor(mlp(0))
    with pytest.raises(ValueError, match="step must be an integer >= 0"):
        mon.step(-1)
    with pytest.raises(TypeError, match="step must be an integer >= 0"):
        mon.record(1.0)
    with pytest.raises(ValueError, match="probe batch"):
        hessian.SpectrumMonitor(mlp(0), CE, None)


def test_plot_spectra_over_training(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import QuadMesh

    import spectra.plot

    mon = monitor(mlp(5), k=2)
    train(mon, 9, seed=5)
    h = mon.history
    heat, side = hessian.plot.spectra_over_training(h)
    fig = heat.figure
    mesh = [c for c in heat.collections if isinstance(c, QuadMesh)]
    assert len(mesh) == 1
    assert mesh[0].get_array().shape == h.densities.T.shape
    # the heat map spans the recorded steps and the common grid
    x0, x1 = heat.get_xlim()
    assert x0 <= h.steps[0] and x1 >= h.steps[-1]
    assert heat.get_ylim() == pytest.approx((h.grid[0], h.grid[-1]), abs=0.1 * np.ptp(h.grid))
    assert heat.get_ylabel() == "eigenvalue $\\lambda$"
    assert side.get_xlabel() == "training step" and side.get_ylabel() == "top eigenvalue"
    assert len(fig.axes) == 3  # heat map, side panel, colorbar
    assert "spectral density" in mesh[0].colorbar.ax.get_ylabel()
    np.testing.assert_array_equal(side.lines[0].get_ydata(), h.top_eigenvalues[:, 0])
    assert heat.get_title() == "Hessian spectrum over training"
    fig.savefig(tmp_path / "h.png", dpi=60)
    img = plt.imread(tmp_path / "h.png")
    plt.close(fig)
    assert img.shape[0] > 100 and len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50
    # plain arrays, one Axes: heat map with the overlaid curve only
    fig, ax = plt.subplots()
    arrays = {"steps": h.steps, "grid": h.grid, "densities": h.densities,
              "top_eigenvalues": h.top_eigenvalues[:, 0]}
    heat, side = hessian.plot.spectra_over_training(arrays, ax, floor=1e-3)
    assert side is None and heat is ax
    assert heat.collections[0].norm.vmin == 1e-3
    with pytest.raises(ValueError, match="densities must have shape"):
        hessian.plot.spectra_over_training({**arrays, "densities": h.densities[:, 1:]}, ax)
    with pytest.raises(ValueError, match="floor"):
        hessian.plot.spectra_over_training(arrays, ax, floor=-1.0)
    with pytest.raises(TypeError, match="top_eigenvalues"):
        hessian.plot.spectra_over_training({k: v for k, v in arrays.items()
                                            if k != "top_eigenvalues"}, ax)
    plt.close(fig)
    # one record as a SpectralDensity of unit mass, for spectra.plot.density
    # (last in this file: the Numba kernel of the smoothing sets torch's thread count)
    den = h.records[-1].spectral_density()
    assert den.num_matvecs == h.records[-1].density_matvecs
    assert abs(np.trapezoid(den.rho, den.x) - 1) < 1e-3
    np.testing.assert_allclose(den.rho, h.records[-1].density(den.x))
    ax = spectra.plot.density(den)
    assert ax.get_xlabel() == "eigenvalue $\\lambda$"
    plt.close(ax.figure)
