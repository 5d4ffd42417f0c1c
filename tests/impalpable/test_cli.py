"""The ``impalpable`` command line, end to end, in process (one subprocess test)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import spectra
from impalpable.cli import main
from impalpable.io import InputError, load_matrix
from impalpable.report import dumps, format_table, jsonable
from spectra.testing import matrix_from_eigenvalues

ROOT = Path(__file__).resolve().parents[2]  # this checkout, installed or not
LAM = np.concatenate([np.linspace(0.0, 1.0, 110), [2.0, 2.5, 3.0, 3.5, 4.0]])


def laplacian(m: int) -> sp.csr_matrix:
    """The m x (m + 1) grid Laplacian (distinct eigenvalues)."""
    def path(k):
        return sp.diags([2.0 * np.ones(k), -np.ones(k - 1), -np.ones(k - 1)], [0, 1, -1])

    return (sp.kron(path(m), sp.identity(m + 1)) + sp.kron(sp.identity(m), path(m + 1))).tocsr()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One matrix per input format; ``ref`` maps each to what the library should see."""
    d = tmp_path_factory.mktemp("matrices")
    A = matrix_from_eigenvalues(LAM, rng=5)
    L = laplacian(11)
    np.save(d / "dense.npy", A)
    np.savez(d / "dense.npz", A)
    sp.save_npz(d / "sparse.npz", L)
    scipy.io.mmwrite(str(d / "sparse.mtx"), L)
    paths = {k: d / k for k in ("dense.npy", "dense.npz", "sparse.npz", "sparse.mtx")}
    ref = {"dense.npy": A, "dense.npz": A, "sparse.npz": L,
           "sparse.mtx": scipy.io.mmread(str(d / "sparse.mtx")).tocsr()}
    return paths, ref


def run(args, tmp_path, capsys):
    rc = main([*map(str, args), "--out", str(tmp_path)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def read_json(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


FORMATS = ["dense.npy", "dense.npz", "sparse.npz", "sparse.mtx"]


# ----------------------------------------------------------------------------- matrices
@pytest.mark.parametrize("fmt", FORMATS)
def test_density_figures_equal_the_library(files, fmt, tmp_path, capsys):
    paths, ref = files
    rc, out, err = run(["density", paths[fmt], "--probes", 4, "--steps", 15, "--seed", 3,
                        "--exact"], tmp_path, capsys)
    assert rc == 0, err
    assert err == ""  # no progress bar and no warning when not on a terminal
    stem = fmt.split(".")[0]
    got = read_json(tmp_path, f"{stem}_density")
    den = spectra.density(ref[fmt], num_probes=4, num_steps=15, rng=3)
    np.testing.assert_array_equal(got["nodes"], den.nodes)
    np.testing.assert_array_equal(got["weights"], den.weights)
    np.testing.assert_array_equal(got["rho"], den.rho)
    assert got["num_matvecs"] == den.num_matvecs == 60
    lam = np.linalg.eigvalsh(ref[fmt].toarray() if sp.issparse(ref[fmt]) else ref[fmt])
    assert got["exact"]["mean"] == pytest.approx(lam.mean(), rel=1e-12)
    assert got["exact"]["w1"] < 0.05 * (lam[-1] - lam[0])
    assert (tmp_path / f"{stem}_density.png").stat().st_size > 20_000
    assert "W1 distance to exact" in out and f"wrote {tmp_path}" in out


@pytest.mark.parametrize("fmt", ["dense.npz", "sparse.mtx"])
def test_eigs_figures_equal_the_library(files, fmt, tmp_path, capsys):
    paths, ref = files
    rc, out, err = run(["eigs", paths[fmt], "-k", 3, "--tol", 1e-9, "--seed", 2, "--exact"],
                       tmp_path, capsys)
    assert rc == 0, err
    got = read_json(tmp_path, f"{fmt.split('.')[0]}_eigs")
    res = spectra.eigsh(ref[fmt], k=3, tol=1e-9, rng=2)
    np.testing.assert_array_equal(got["eigenvalues"], res.eigenvalues)
    assert got["num_matvecs"] == res.num_matvecs and got["converged"]
    lam = np.linalg.eigvalsh(ref[fmt].toarray() if sp.issparse(ref[fmt]) else ref[fmt])
    np.testing.assert_allclose(got["exact"]["eigenvalues"], lam[::-1][:3], rtol=1e-12)
    np.testing.assert_allclose(got["eigenvalues"], lam[::-1][:3], rtol=1e-8)
    assert out.count("lambda_") == 3


def test_eigs_exact_matches_each_which(files, tmp_path, capsys):
    paths, _ = files
    for which in ("SA", "BE"):
        rc, _, err = run(["eigs", paths["dense.npy"], "-k", 4, "--which", which, "--tol", 1e-10,
                          "--exact"], tmp_path, capsys)
        assert rc == 0, err
        got = read_json(tmp_path, "dense_eigs")
        np.testing.assert_allclose(got["eigenvalues"], got["exact"]["eigenvalues"], atol=1e-8)


@pytest.mark.parametrize(("fmt", "method"), [("sparse.npz", "xtrace"),
                                             ("dense.npy", "hutchinson"),
                                             ("sparse.mtx", "hutchpp")])
def test_trace_figures_equal_the_library(files, fmt, method, tmp_path, capsys):
    paths, ref = files
    rc, out, err = run(["trace", paths[fmt], "--method", method, "--matvecs", 30, "--seed", 4,
                        "--exact"], tmp_path, capsys)
    assert rc == 0, err
    got = read_json(tmp_path, f"{fmt.split('.')[0]}_trace")
    est = spectra.trace(ref[fmt], 30, method=method, rng=4)
    assert got["value"] == est.value and got["stderr"] == est.stderr
    np.testing.assert_array_equal(got["samples"], est.samples)
    assert got["exact"]["value"] == pytest.approx(ref[fmt].diagonal().sum(), rel=1e-14)
    assert abs(got["exact"]["error"]) <= 4 * est.stderr + 1e-9
    assert "standard error" in out


def test_trace_xnystrace_needs_psd_flag(files, tmp_path, capsys):
    paths, ref = files
    rc, _, err = run(["trace", paths["sparse.npz"], "--method", "xnystrace"], tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1 and "psd" in err.lower()
    rc, _, err = run(["trace", paths["sparse.npz"], "--method", "xnystrace", "--psd",
                      "--matvecs", 20], tmp_path, capsys)
    assert rc == 0, err
    est = spectra.trace(spectra.as_operator(ref["sparse.npz"], psd=True), 20,
                        method="xnystrace", rng=0)
    assert read_json(tmp_path, "sparse_trace")["value"] == est.value


@pytest.mark.parametrize("kind", ["eigenvalues", "submatrix"])
def test_decompress_figures_equal_the_library(kind, tmp_path, capsys):
    from freedecomp import decompress
    from freedecomp.laws import MarchenkoPastur

    law = MarchenkoPastur(0.25)
    A = law.sample_matrix(60, rng=1)
    sample = np.linalg.eigvalsh(A) if kind == "eigenvalues" else A
    path = tmp_path / "sample.npy"
    np.save(path, sample)
    rc, out, err = run(["decompress", path, "--size", 120, 240, "--seed", 7], tmp_path, capsys)
    assert rc == 0, err
    got = read_json(tmp_path, "sample_decompress")
    res = decompress(sample, [120, 240], rng=7)
    assert got["input"]["kind"] == kind and got["model"] == res.diagnostics["model"]
    assert [f["size"] for f in got["flow"]] == [120, 240]
    for f, r in zip(got["flow"], res.flow, strict=True):
        np.testing.assert_array_equal(f["edges"], r.edges)
        assert f["mean"] == r.moment(1)
    upper = law.decompressed(4.0).support[1]  # MP(1.0): the law at N = 240
    assert abs(got["flow"][-1]["edges"][-1][1] - upper) < 0.25 * upper
    assert "upper edge" in out and (tmp_path / "sample_decompress.png").exists()


# ----------------------------------------------------------------------------- bad input
def _bad_files(d: Path) -> dict:
    A = matrix_from_eigenvalues(np.arange(1.0, 9.0), rng=0)
    (d / "garbage.npy").write_text("not numpy")
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 truncated zip")
    (d / "garbage.mtx").write_text("%%MatrixMarket nonsense\n1 2\n")
    (d / "matrix.txt").write_text("1 2\n3 4\n")
    np.save(d / "cube.npy", np.zeros((3, 3, 3)))
    np.save(d / "rect.npy", np.ones((4, 6)))
    nan = A.copy()
    nan[2, 3] = nan[3, 2] = np.nan
    np.save(d / "nan.npy", nan)
    S = sp.random(8, 8, density=0.5, random_state=0, format="csr")
    S = (S + S.T).tocsr()
    S.data[0] = np.inf
    sp.save_npz(d / "inf.npz", S)
    np.save(d / "asym.npy", A + np.triu(np.ones((8, 8)), 1))
    np.save(d / "complex.npy", A.astype(complex))
    np.savez(d / "two.npz", a=A, b=A)
    np.save(d / "object.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    np.save(d / "empty.npy", np.zeros((0, 0)))
    return {
        "missing": (d / "nothere.npy", "no such file"),
        "extension": (d / "matrix.txt", "unknown file type"),
        "garbage npy": (d / "garbage.npy", "not a NumPy .npy"),
        "garbage npz": (d / "garbage.npz", ".npz"),
        "garbage mtx": (d / "garbage.mtx", "Matrix Market"),
        "3-d": (d / "cube.npy", "2-d"),
        "non-square": (d / "rect.npy", "square"),
        "nan": (d / "nan.npy", "NaN"),
        "inf sparse": (d / "inf.npz", "NaN or Inf"),
        "not symmetric": (d / "asym.npy", "symmetric"),
        "complex": (d / "complex.npy", "complex"),
        "two arrays": (d / "two.npz", "exactly one"),
        "object": (d / "object.npy", "object"),
        "empty": (d / "empty.npy", "empty"),
        "directory": (d, "unknown file type"),
    }


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return _bad_files(tmp_path_factory.mktemp("bad"))


BAD = ["missing", "extension", "garbage npy", "garbage npz", "garbage mtx", "3-d",
       "non-square", "nan", "inf sparse", "not symmetric", "complex", "two arrays", "object",
       "empty", "directory"]


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("command", ["density", "eigs"])
def test_bad_file_exits_2_with_one_line(bad, case, command, tmp_path, capsys):
    path, words = bad[case]
    rc, out, err = run([command, path], tmp_path, capsys)
    assert rc == 2
    assert err.startswith("impalpable: error: ") and err.count("\n") == 1, err
    assert words.lower() in err.lower(), err
    assert "Traceback" not in err and out == ""
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("case", ["nan", "non-square", "garbage mtx", "missing"])
def test_bad_file_for_trace_and_decompress(bad, case, tmp_path, capsys):
    path, words = bad[case]
    for args in (["trace", path], ["decompress", path, "--size", "100"]):
        rc, _, err = run(args, tmp_path, capsys)
        assert rc == 2 and err.count("\n") == 1 and words.lower() in err.lower(), err


def test_trace_hutchinson_accepts_a_non_symmetric_matrix(bad, tmp_path, capsys):
    rc, _, err = run(["trace", bad["not symmetric"][0], "--method", "hutchinson",
                      "--matvecs", 8, "--exact"], tmp_path, capsys)
    assert rc == 0, err
    rc, _, err = run(["trace", bad["not symmetric"][0]], tmp_path, capsys)
    assert rc == 2 and "symmetric" in err


def test_estimator_errors_are_one_line(files, tmp_path, capsys):
    paths, _ = files
    rc, _, err = run(["eigs", paths["dense.npy"], "-k", 500], tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1 and "k" in err and "Traceback" not in err
    rc, _, err = run(["decompress", paths["dense.npy"], "--size", 50], tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1 and "exceed" in err


def test_convergence_warning_is_one_line_and_recorded(files, tmp_path, capsys):
    paths, _ = files
    rc, _, err = run(["eigs", paths["dense.npy"], "-k", 3, "--which", "SA", "--max-matvecs", 41],
                     tmp_path, capsys)
    assert rc == 0
    lines = err.splitlines()
    assert lines and all(x.startswith("impalpable: warning: ") for x in lines), err
    got = read_json(tmp_path, "dense_eigs")
    assert not got["converged"] and got["warnings"]


def test_sample_must_be_1d_or_2d(bad, tmp_path, capsys):
    rc, _, err = run(["decompress", bad["3-d"][0], "--size", "100"], tmp_path, capsys)
    assert rc == 2 and "1-d (eigenvalues) or 2-d" in err


@pytest.mark.parametrize("args", [["density"], ["eigs", "x.npy", "-k", "0"],
                                  ["trace", "x.npy", "--method", "magic"], ["frobnicate"],
                                  ["decompress", "x.npy"], ["eigs", "x.npy", "--tol", "nan"]])
def test_usage_errors_are_one_line(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("impalpable") and err.count("\n") == 1, err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "density" in capsys.readouterr().out


def test_traceback_flag_shows_the_traceback(bad, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        main(["density", str(bad["missing"][0]), "--traceback", "--out", str(tmp_path)])


def test_load_matrix_converts_integers_and_keeps_sparse(tmp_path):
    path = tmp_path / "int.mtx"
    scipy.io.mmwrite(str(path), sp.csr_matrix(np.array([[2, 1], [1, 3]])))
    mf = load_matrix(path, symmetric=True)
    assert mf.sparse and mf.matrix.dtype == np.float64 and mf.nnz == 4
    np.testing.assert_array_equal(mf.matrix.toarray(), [[2.0, 1.0], [1.0, 3.0]])
    assert "2 x 2 sparse" in mf.describe()


# ----------------------------------------------------------------------------- output
def test_json_and_table_helpers():
    text = dumps({"a": np.float64(np.nan), "b": np.arange(3), "c": [(1.0, 2.0)],
                  "d": {"e": np.bool_(True)}})
    assert json.loads(text) == {"a": None, "b": [0, 1, 2], "c": [[1.0, 2.0]],
                                "d": {"e": True}}
    assert jsonable(np.float32(0.5)) == 0.5
    table = format_table(["name", "value", ""], [["alpha", 1.23456789], ["b", 10]])
    lines = table.splitlines()
    assert lines[0].split() == ["name", "value"] and len(lines) == 4
    assert lines[2].endswith("1.23457") and lines[3].endswith("10")
    assert len({len(line) for line in lines}) == 1  # aligned


def test_progress_wrapper_counts_products_and_keeps_results(files, capsys):
    from impalpable.progress import progress_operator

    _, ref = files
    op = spectra.as_operator(ref["dense.npy"])
    with progress_operator(op, 20, "trace", True) as wrapped:
        assert wrapped is not op and wrapped.symmetric
        est = spectra.trace(wrapped, 20, rng=3)
    assert wrapped.num_matvecs == op.num_matvecs == 20
    assert est.value == spectra.trace(op, 20, rng=3).value
    with progress_operator(op, 20, "trace", False) as same:
        assert same is op


# ----------------------------------------------------------------------------- hessian
MODEL_MODULE = '''
import torch

def setup():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.8, 0.8, generator=g)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    return model, torch.nn.CrossEntropyLoss(), (X, y)

def broken():
    raise RuntimeError("no data here")

def wrong():
    return 1, 2
'''


@pytest.fixture
def model_file(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "tinymodel.py"
    path.write_text(textwrap.dedent(MODEL_MODULE))
    return path


def test_hessian_subcommand_equals_the_helpers(model_file, tmp_path, capsys, monkeypatch):
    import hessian
    from impalpable.commands.model import load_function

    spec = f"{model_file}:setup"
    model, loss_fn, data = load_function(spec)()
    out = tmp_path / "out"
    rc, _, err = run(["hessian", spec, "--what", "eigs", "-k", 2, "--tol", 1e-9, "--seed", 1],
                     out, capsys)
    assert rc == 0 and err == "", err
    got = read_json(out, "setup_hessian_eigs")
    res = hessian.top_eigenvalues(model, loss_fn, data, k=2, tol=1e-9, rng=1)
    np.testing.assert_allclose(got["eigenvalues"], res.eigenvalues, rtol=1e-12)
    assert got["num_params"] == 32
    rc, _, err = run(["hessian", spec, "--what", "trace", "--matvecs", 20, "--seed", 1],
                     out, capsys)
    assert rc == 0, err
    est = hessian.trace(model, loss_fn, data, num_matvecs=20, rng=1)
    assert read_json(out, "setup_hessian_trace")["value"] == pytest.approx(est.value,
                                                                           rel=1e-12)
    # a dotted module name from the current folder, the GGN and a density
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(["hessian", "tinymodel:setup", "--kind", "ggn", "--probes", 3,
                      "--steps", 10, "--seed", 1], out, capsys)
    assert rc == 0, err
    den = hessian.density(model, loss_fn, data, kind="ggn", num_probes=3, num_steps=10, rng=1)
    np.testing.assert_allclose(read_json(out, "setup_ggn_density")["nodes"], den.nodes,
                               rtol=1e-10, atol=1e-14)
    assert (out / "setup_ggn_density.png").exists()


@pytest.mark.parametrize(("spec", "words"), [
    ("nomodule_xyz:setup", "cannot import"),
    ("{file}:missing", "no function"),
    ("{file}:broken", "RuntimeError: no data here"),
    ("{file}:wrong", "(model, loss_fn, data)"),
    ("{dir}/absent.py:setup", "no such file"),
    ("no_colon", "MODULE:FUNCTION"),
])
def test_hessian_bad_function_is_one_line(model_file, spec, words, tmp_path, capsys):
    spec = spec.format(file=model_file, dir=tmp_path)
    rc, _, err = run(["hessian", spec], tmp_path / "out", capsys)
    assert rc == 2 and err.count("\n") == 1 and words in err, err


def test_hessian_method_must_fit_what(model_file, tmp_path, capsys):
    rc, _, err = run(["hessian", f"{model_file}:setup", "--what", "density", "--method",
                      "xtrace"], tmp_path, capsys)
    assert rc == 2 and "does not apply" in err


# ----------------------------------------------------------------------------- entry point
def test_console_entry_point_in_a_pipe(files, tmp_path):
    paths, ref = files
    cmd = [sys.executable, "-m", "impalpable"]  # the console script runs the same main()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run([*cmd, "trace", str(paths["sparse.mtx"]), "--matvecs", "20",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar in a pipe
    est = spectra.trace(ref["sparse.mtx"], 20, rng=0)
    assert json.loads((tmp_path / "sparse_trace.json").read_text())["value"] == est.value
    bad = subprocess.run([*cmd, "eigs", str(tmp_path / "missing.npz")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------- demo
def test_mlp_hessian_matches_autograd():
    torch = pytest.importorskip("torch")
    from impalpable.demo import mlp_hessian

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(),
                                torch.nn.Linear(3, 5)).double()
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (30,), generator=g)
    params = dict(model.named_parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params.values()])

    def loss(theta):
        out, i = {}, 0
        for name, p in params.items():
            out[name] = theta[i:i + p.numel()].reshape(p.shape)
            i += p.numel()
        logits = torch.func.functional_call(model, out, (X,))
        return torch.nn.functional.cross_entropy(logits, y)

    H = torch.func.jacrev(torch.func.jacrev(loss))(flat).numpy()  # reverse over reverse
    Hc = mlp_hessian(X.numpy(), y.numpy(), *[p.detach().numpy() for p in params.values()])
    np.testing.assert_allclose(Hc, H, atol=1e-14 * np.abs(H).max() * 10)


def test_demo_small_writes_page_pictures_and_figures(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    assert main(["demo", "--small", "--out", str(tmp_path), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    page = (tmp_path / "index.html").read_text()
    figures = json.loads((tmp_path / "demo.json").read_text())
    assert f"open {(tmp_path / 'index.html').resolve()}" in out
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) >= 2 and all(f"src='{p}'" in page for p in pngs)
    for p in pngs:
        assert (tmp_path / p).stat().st_size > 30_000
    a = figures["a"]
    top = a["top_eigenvalues"]
    assert top["converged"] and top["max_rel_error"] < 1e-6
    assert abs(a["trace"]["estimate"] - a["trace"]["exact"]) < 4 * a["trace"]["stderr"]
    spread = a["density"]["exact_bounds"][1] - a["density"]["exact_bounds"][0]
    assert a["density"]["w1"] < 0.01 * spread and a["product_check"] < 1e-10
    b = figures["b"]  # kernel: SLQ accurate; decompression from SLQ-fed blocks validated
    assert b["SLQ"]["w1"] < 0.02
    assert b["free decompression"]["w1"] < 1.5 * b["Nystrom (block x N/n)"]["w1"]
    assert [e["method"] for e in b["block_estimates"]] == ["slq"] * 4
    assert abs(b["Nystrom (block x N/n)"]["largest"] / b["exact_largest"] - 1) < 0.2
    for f in figures["c"]["flow"]:
        width = f["closed_form_edges"][1] - f["closed_form_edges"][0]
        assert abs(f["edges"][1] - f["closed_form_edges"][1]) < 0.15 * width
        assert f["w1_to_closed_form"] < 0.05 * width
    assert "impalpable demo --small" in page


def test_demo_without_scikit_learn_says_so_in_one_line(monkeypatch, tmp_path):
    from impalpable.demo import SMALL, Part, _html, part_hessian

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    part = part_hessian(tmp_path, SMALL, 0, False)
    assert part.skipped.startswith("skipped: needs scikit-learn")
    assert "\n" not in part.skipped and not part.images and not list(tmp_path.iterdir())
    page = _html([part, Part("c", "flow", "text", rows=[["1", "2"]], headers=["a", "b"],
                             images=["x.png"])], "impalpable demo", 1.0, "small")
    assert "class='skip'" in page and "<td>2</td>" in page and "src='x.png'" in page
