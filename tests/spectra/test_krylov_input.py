"""Bad input to eigsh and lanczos: clear TypeError/ValueError naming the argument and
what is allowed (issue 15, "Bad data accepted", "Messages", "Flags")."""

from __future__ import annotations

import numpy as np
import pytest

from spectra import Operator, eigsh, lanczos

A = np.diag(np.arange(1.0, 31.0))


def _op(f, mm=None):
    return Operator.from_matvec(f, (30, 30), dtype=np.float64, symmetric=True, matmat=mm)


@pytest.mark.parametrize("solver", ["eigsh", "lanczos"])
@pytest.mark.parametrize("v0,match", [
    (np.ones(30) + 1j, "complex"),
    ("ones", "v0 must be an array of real numbers"),
    (np.array(["a"] * 30), "v0 must be an array of real numbers"),
    (np.ones(30, dtype=bool), "bool"),
    (np.array([None] * 30, dtype=object), "object"),
    (3.0, "v0 must be an array"),
])
def test_v0_refused_by_name(solver, v0, match):
    with pytest.raises(TypeError, match=match):
        if solver == "eigsh":
            eigsh(A, 1, v0=v0)
        else:
            lanczos(A, 5, v0=v0)


def test_v0_complex_torch_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="complex"):
        eigsh(torch.from_numpy(A), 1, v0=torch.ones(30, dtype=torch.complex128))


@pytest.mark.parametrize("flag", ["return_eigenvectors", "check_copies"])
@pytest.mark.parametrize("value", ["no", "yes", 1, 0, 2.5, None])
def test_non_bool_flags_refused(flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        eigsh(A, 1, **{flag: value})


@pytest.mark.parametrize("block_size", [1, 2])
def test_complex_products_refused(block_size):
    # issue 15: a complex matmat with block_size=2 ended in LinAlgError; a complex
    # matvec had its imaginary part dropped
    cplx = _op(lambda v: (A @ v) * (1 + 1j), mm=lambda V: (A @ V) * (1 + 1j))
    with pytest.raises(TypeError, match="complex"):
        eigsh(cplx, 1, block_size=block_size, rng=0)
    with pytest.raises(TypeError, match="complex"):
        lanczos(cplx, 5, rng=0)


def test_integer_products_refused():
    B = np.diag(np.arange(1, 31))
    ints = _op(lambda v: B @ np.round(v).astype(int))
    with pytest.raises(TypeError, match="int"):
        eigsh(ints, 1, rng=0)


@pytest.mark.parametrize("k", [0, -3, 31, 10**6])
def test_k_out_of_range_named(k):
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 30\].*n = 30"):
        eigsh(A, k)


@pytest.mark.parametrize("steps", [0, 31])
def test_lanczos_steps_out_of_range_named(steps):
    with pytest.raises(ValueError, match=r"num_steps must be an integer in \[1, 30\]"):
        lanczos(A, steps)
