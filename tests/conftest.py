import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import adlcodec  # noqa: E402

KERNELS = adlcodec.available_kernels()


@pytest.fixture(params=KERNELS)
def kernel(request):
    """Runs the test once per kernel this CPU/build has, and checks the switch really happened."""
    with adlcodec.use_kernel(request.param):
        assert adlcodec.kernel() == request.param
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
