"""Keep BLAS single-threaded in these tests: on a shared 2-core machine threaded OpenBLAS
inside many small eigensolves is slower by an order of magnitude (oversubscription)."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _single_threaded_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only affects speed
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield
