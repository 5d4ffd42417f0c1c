import json

import numpy as np

from spectra.cli import demo_matrix, main


def test_demo_writes_plot_and_figures_close_to_truth(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size", "400", "--seed", "1"]) == 0
    figures = json.loads((tmp_path / "demo.json").read_text())
    assert (tmp_path / "demo_density.png").stat().st_size > 10_000
    top = figures["top_eigenvalues"]
    assert top["converged"]
    np.testing.assert_allclose(top["estimate"], top["truth"], rtol=1e-8)
    tr = figures["trace"]
    assert abs(tr["estimate"] - tr["truth"]) < 4 * tr["stderr"] + 1e-9
    assert figures["density"]["w1_to_truth"] < 0.05
    assert "wrote" in capsys.readouterr().out


def test_demo_matrix_has_its_spectrum():
    A, lam = demo_matrix(200, rng=3)
    np.testing.assert_allclose(np.linalg.eigvalsh(A), lam, atol=1e-10)


def test_bad_size_exits_2(capsys):
    assert main(["demo", "--size", "3"]) == 2
    assert "--size" in capsys.readouterr().err
