"""Issue 15, the cases of the training tools and of the command line, one table.

SNRAdamW with NaN/Inf gradients; SpectrumMonitor on a path that is not a history,
``.history`` before any record, ``step()`` after a resume; the command line on a named
pipe, on a Matrix Market file declaring 1e8 x 1e8 with one entry, on an ``.npz`` with no
arrays and on headers declaring a huge size. Each case failed on main before the change.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hessian_refs import data, mlp  # noqa: E402

import hessian  # noqa: E402
import impalpable.io as mio  # noqa: E402
from impalpable.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CE = torch.nn.CrossEntropyLoss()
GIB = 2**30


# ---------------------------------------------------------------------- SNRAdamW
def case_snr_nan_gradient(tmp_path):
    w = torch.ones(5, requires_grad=True)
    opt = hessian.SNRAdamW([w], lr=0.1, check_finite=True, warmup=0)
    w.grad = torch.ones(5)
    opt.step()
    w.grad = torch.full((5,), float("nan"))
    with pytest.warns(RuntimeWarning, match="NaN or Inf"):
        opt.step()
    assert torch.isfinite(w).all()


# ---------------------------------------------------------------------- SpectrumMonitor
def _monitor(path=None, **kw):
    X, y = data("mlp", 24)
    opts = dict(every=2, num_probes=3, num_steps=12, trace_matvecs=12, rng=5, tol=1e-10)
    opts.update(kw)
    return hessian.SpectrumMonitor(mlp(0), CE, (X, y), path=path, **opts)


FOREIGN = (b"these are my notes, not a history\n", b"no newline at the end",
           b"\x89PNG\r\n\x1a\n\x00\x00")


def case_monitor_refuses_foreign_file(tmp_path):
    for i, content in enumerate(FOREIGN):
        f = tmp_path / f"notes{i}.jsonl"
        f.write_bytes(content)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no misleading "truncated last line" warning
            with pytest.raises(ValueError, match="not a spectrum history"):
                _monitor(f)
        assert f.read_bytes() == content  # left unchanged


def case_monitor_empty_history(tmp_path):
    mon = _monitor(k=2)
    h = mon.history
    assert len(h) == 0
    assert h.steps.shape == (0,) and h.top_eigenvalues.shape == (0, 2)
    assert h.densities.shape[0] == 0
    assert mon.histories["hessian"].trace.shape == (0,)


def case_monitor_resume_continues_steps(tmp_path):
    f = tmp_path / "h.jsonl"
    mon = _monitor(f)
    for _ in range(5):  # records at 0, 2, 4
        mon.step()
    again = _monitor(f)
    assert again.next_step == 5
    again.step()  # step 5: off-schedule
    rec = again.step()  # step 6: recorded, not "step 0, already in the history"
    assert rec is not None and rec["hessian"].step == 6
    assert again.history.steps.tolist() == [0, 2, 4, 6]


# ---------------------------------------------------------------------- command line
def _cli(args, tmp_path, capsys):
    rc = main([*map(str, args), "--out", str(tmp_path / "out")])
    return rc, capsys.readouterr().err


def case_cli_fifo_does_not_block(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    fifo = tmp_path / "matrix.npy"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        res = subprocess.run([sys.executable, "-m", "impalpable", "eigs", str(fifo), "--out",
                              str(tmp_path / "out")], capture_output=True, text=True,
                             timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the command line blocked on a named pipe")
    assert res.returncode == 2
    assert "named pipe" in res.stderr and str(fifo) in res.stderr, res.stderr


def _small_memory(monkeypatch):
    monkeypatch.setattr(mio, "available_memory", lambda: 16 * GIB)


def case_cli_huge_mtx_refused_before_allocating(tmp_path, capsys, monkeypatch):
    _small_memory(monkeypatch)
    f = tmp_path / "huge.mtx"
    f.write_text("%%MatrixMarket matrix coordinate real general\n"
                 "100000000 100000000 1\n1 1 1.0\n")
    rc, err = _cli(["density", f], tmp_path, capsys)
    assert rc == 2
    assert str(f) in err and "100,000,000 x 100,000,000" in err and "GiB" in err, err


def case_cli_dense_mtx_declared_too_big(tmp_path, capsys, monkeypatch):
    _small_memory(monkeypatch)
    f = tmp_path / "dense.mtx"
    f.write_text("%%MatrixMarket matrix array real general\n100000 100000\n1.0\n")
    rc, err = _cli(["eigs", f], tmp_path, capsys)
    assert rc == 2 and str(f) in err and "100,000 x 100,000" in err, err


def case_cli_npz_without_arrays(tmp_path, capsys):
    f = tmp_path / "empty.npz"
    np.savez(f)
    rc, err = _cli(["trace", f], tmp_path, capsys)
    assert rc == 2 and str(f) in err
    assert "no arrays" in err and "not a zip" not in err, err


def _huge_npy(path):
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        fh.write(b"\0" * 64)


def case_cli_huge_npy_names_file_and_size(tmp_path, capsys, monkeypatch):
    _small_memory(monkeypatch)
    f = tmp_path / "huge.npy"
    _huge_npy(f)
    rc, err = _cli(["density", f], tmp_path, capsys)
    assert rc == 2 and str(f) in err and "1,000,000 x 1,000,000" in err, err


def case_load_matrix_huge_npz_names_file_and_size(tmp_path, monkeypatch):
    _small_memory(monkeypatch)
    inner = tmp_path / "arr_0.npy"
    _huge_npy(inner)
    import zipfile

    f = tmp_path / "huge.npz"
    with zipfile.ZipFile(f, "w") as z:
        z.write(inner, "arr_0.npy")
    with pytest.raises(mio.InputError, match="1,000,000 x 1,000,000") as info:
        mio.load_matrix(f)
    assert str(f) in str(info.value)


CASES = {name[5:]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_issue15_case(name, tmp_path, capsys, monkeypatch):
    fn = CASES[name]
    kw = {}
    params = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    for p, v in (("capsys", capsys), ("monkeypatch", monkeypatch)):
        if p in params:
            kw[p] = v
    fn(tmp_path, **kw)
