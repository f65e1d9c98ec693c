"""Shared set-up of the unit tests.

``helpers`` is imported before any test module, so that TensorFlow, wherever a
test module imports it from, runs the book's CPU kernels
(``helpers/__init__.py``): the tests then see the numbers the chapters see.
The lanes' kernel module too, since it sets Numba's variables when it is
first imported, which the environment check below would otherwise blame on
the first test that imports it.
"""

import os

import pytest

import helpers  # noqa: F401
import helpers.lane_kernel  # noqa: F401  (sets Numba's variables on import)


@pytest.fixture(autouse=True)
def _environment_left_as_found():
    """Fail any test that leaves the process environment changed.

    Every process a later test starts (kernel probes, loky and Dask workers)
    inherits it.  A test that set NUMBA_CPU_FEATURES to "+avx512f" and left
    it behind made those processes compile AVX-512 code, which an AMD EPYC
    without AVX-512 could not run (SIGILL, session 19).
    """
    before = dict(os.environ)
    yield
    after = dict(os.environ)
    before.pop("PYTEST_CURRENT_TEST", None)  # (pytest's own)
    after.pop("PYTEST_CURRENT_TEST", None)
    changed = sorted(
        name
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name)
    )
    assert not changed, (
        f"the test left these environment variables changed: {changed}"
    )
