"""``impalpable decompress POINTS --kernel ...``: the kernel mode, end to end in process."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from impalpable.cli import main

NPTS = 900


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    d = tmp_path_factory.mktemp("points")
    g = np.random.default_rng(0)
    centres = 3.0 * g.standard_normal((4, 3))
    X = centres[g.integers(0, 4, NPTS)] + g.standard_normal((NPTS, 3))
    np.save(d / "pts.npy", X)
    sp.save_npz(d / "sparse.npz", sp.random(50, 3, density=0.5, format="csr", random_state=0))
    return d, X


def run(args, tmp_path, capsys):
    rc = main([*map(str, args), "--out", str(tmp_path)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def read(folder: Path) -> dict:
    return json.loads((folder / "pts_kernel_decompress.json").read_text())


def test_kernel_mode_equals_the_library(points, tmp_path, capsys):
    from freedecomp import decompress
    from freedecomp.samplers import kernel_blocks

    d, X = points
    rc, out, err = run(["decompress", d / "pts.npy", "--kernel", "rbf", "--sample", 150,
                        "--size", NPTS, "--blocks", 2, "--seed", 3, "--exact"], tmp_path,
                       capsys)
    assert rc == 0, err
    got = read(tmp_path)
    res = decompress(kernel_blocks(X, "rbf", rng=3), NPTS, n=150, total=NPTS, rng=3,
                     num_samples=2, blocks={"num_probes": 10, "num_steps": 80})
    assert got["flow"][-1]["trace"] == pytest.approx(res.trace(), rel=1e-10)
    assert got["kernel"]["name"] == "rbf" and got["kernel"]["bandwidth"] > 0
    assert [b["method"] for b in got["blocks"]] == ["dense", "dense"]
    lam = np.linalg.eigvalsh(kernel_blocks(X).operator.block(np.arange(NPTS), np.arange(NPTS)))
    assert got["exact"]["trace"] == pytest.approx(lam.sum(), rel=1e-10)
    assert got["exact"]["w1_over_sd"] >= 0
    assert "W1 / sd to exact" in out and (tmp_path / "pts_kernel_decompress.png").exists()


def test_size_below_the_points_needs_no_exact(points, tmp_path, capsys):
    d, _ = points
    rc, out, err = run(["decompress", d / "pts.npy", "--kernel", "laplace", "--sample", 100,
                        "--size", 600, "--blocks", 1, "--quiet"], tmp_path, capsys)
    assert rc == 0, err
    assert read(tmp_path)["flow"][-1]["size"] == 600 and out == ""


@pytest.mark.parametrize("extra,words", [
    (["--sample", 900], "must be below the number of points"),
    (["--sample", 100, "--size", 2000], "exceeds the number of points"),
    (["--size", 900], "needs --sample"),
    (["--sample", 100, "--columns", 5], "not for kernel matrices"),
    (["--sample", 100, "--size", 800, "--exact"], "--exact needs --size equal"),
    (["--sample", 100, "--size", 400, 900], "one --size"),
])
def test_bad_kernel_arguments_are_one_line(points, extra, words, tmp_path, capsys):
    d, _ = points
    args = ["decompress", d / "pts.npy", "--kernel", "rbf", *extra]
    if "--size" not in extra:
        args += ["--size", NPTS]
    rc, out, err = run(args, tmp_path, capsys)
    assert rc == 2 and err.startswith("impalpable: error: ") and err.count("\n") == 1, err
    assert words in err and out == ""


def test_sample_without_kernel_and_sparse_points_are_refused(points, tmp_path, capsys):
    d, _ = points
    rc, _, err = run(["decompress", d / "pts.npy", "--sample", 100, "--size", 900], tmp_path,
                     capsys)
    assert rc == 2 and "--sample needs --kernel" in err
    rc, _, err = run(["decompress", d / "sparse.npz", "--kernel", "rbf", "--sample", 10,
                      "--size", 50], tmp_path, capsys)
    assert rc == 2 and "dense" in err
    rc, _, err = run(["decompress", d / "pts.npy", "--kernel", "sigmoid", "--sample", 10,
                      "--size", 50], tmp_path, capsys)
    assert rc == 2 and "invalid choice" in err


def test_kernel_mode_budget_is_adaptive_by_default():
    from freedecomp.blocks import RTOL
    from impalpable.cli import build_parser

    args = build_parser().parse_args(["decompress", "p.npy", "--kernel", "rbf", "--sample",
                                      "10", "--size", "20"])
    assert args.steps is None and args.rtol == RTOL and args.probes == 10
    # the other subcommands keep their fixed 80 steps
    assert build_parser().parse_args(["density", "m.npy"]).steps == 80
    assert build_parser().parse_args(["hessian", "m:f"]).steps == 80


@pytest.mark.parametrize("extra,expect", [([], None), (["--steps", 30], 30)])
def test_kernel_mode_slq_blocks_follow_rtol_or_steps(points, tmp_path, capsys, monkeypatch,
                                                     extra, expect):
    import freedecomp.blocks as fb

    seen = []
    real = fb.block_spectrum

    def spy(op, **kw):
        seen.append((kw.get("num_steps"), kw.get("rtol")))
        return real(op, **{**kw, "dense_max": 100})  # blocks of 300 points go to SLQ

    monkeypatch.setattr(fb, "block_spectrum", spy)
    d, _ = points
    rc, _, err = run(["decompress", d / "pts.npy", "--kernel", "rbf", "--sample", 300,
                      "--size", NPTS, "--blocks", 1, "--rtol", 0.02, "--quiet", *extra],
                     tmp_path, capsys)
    assert rc == 0, err
    got = read(tmp_path)["blocks"]
    assert [b["method"] for b in got] == ["slq"] and seen[0] == (expect, 0.02)
    if expect is None:  # adaptive: products are not the fixed 10 probes x 80 steps
        assert got[0]["num_matvecs"] != 10 * 80
