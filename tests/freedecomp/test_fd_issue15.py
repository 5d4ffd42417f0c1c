"""Issue 15, freedecomp: bad input gets a clear error naming the problem."""

import numpy as np
import pytest

from freedecomp import decompress

E = np.linspace(0.0, 1.0, 64)


def _sampler(idx):
    return np.diag(np.arange(len(idx), dtype=float))


@pytest.mark.parametrize(
    ("sample", "size", "kwargs", "exc", "match"),
    [
        (E + 1j, 256, {}, TypeError, "must be real: got complex"),
        (E, [], {}, ValueError, "size must be .* got an empty sequence"),
        (E, None, {}, TypeError, r"size must be an integer > n = 64 .* got None"),
        (E, float("nan"), {}, TypeError, "size must be an integer >= 65, got nan"),
        (E, "256", {}, TypeError, "size must be an integer > n = 64 .* got '256'"),
        (E, 256.0, {}, TypeError, "size must be an integer >= 65, got 256.0"),
        (E, [256.0, 512], {}, TypeError, "size must be an integer >= 65, got 256.0"),
        (np.array(["1.5"] * 64), 256, {}, TypeError, "sample must be numbers"),
        ([np.diag(np.arange(20.0)), np.diag(np.arange(24.0))], 256, {}, ValueError,
         r"same size n x n, got shapes \[\(20, 20\), \(24, 24\)\]"),
        (E, 256, {"slack": -1}, ValueError, "slack must be a real number >= 0, got -1"),
        (_sampler, 256, {"n": 2.5, "total": 1000}, TypeError,
         "n must be an integer >= 1, got 2.5"),
        (lambda idx: np.eye(len(idx)) * 1j, 256, {"n": 40, "total": 1000}, TypeError,
         "sampler must be real"),
        (E, 256, {"order": -1}, TypeError, "order must be a non-empty sequence of integers"),
        (E, 256, {"order": (2, -1)}, ValueError, "each entry of order must be an integer >= 0"),
        (E, 256, {"repeats": 0}, ValueError, "repeats must be an integer >= 1, got 0"),
        (E, 256, {"grid": 0}, ValueError, r"grid \(a point count\) must be an integer >= 2"),
        (E, 256, {"grid": -1}, ValueError, r"grid \(a point count\) must be an integer >= 2"),
        (E, 256, {"grid": np.ones((3, 3))}, ValueError, r"an array of shape \(3, 3\)"),
        (E, 256, {"grid": "x"}, TypeError, "grid must be .*got 'x'"),
    ],
    ids=["complex", "size-empty", "size-none", "size-nan", "size-str", "size-float",
         "size-float-in-list", "string-eigenvalues", "blocks-of-different-sizes",
         "slack-negative", "sampler-n-float", "sampler-complex",
         "order-int", "order-negative", "repeats-zero", "grid-zero", "grid-negative",
         "grid-2d", "grid-str"],
)
def test_bad_input_is_refused_by_name(sample, size, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        decompress(sample, size, **kwargs)


def test_several_eigenvalue_blocks_are_accepted():
    from freedecomp import laws

    law = laws.MarchenkoPastur(1 / 8)
    blocks = [np.linalg.eigvalsh(law.sample_matrix(128, s)) for s in range(3)]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = decompress(blocks, 512, rng=0)
    assert r.bands is not None and r.diagnostics.sample_size == 128
