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


# scripts/test.sh runs the suite on several pytest-xdist workers, which are handed tests in collection order:
# the run ends when its last long test does, so the modules of long multi-process tests go first (their CI
# minutes, measured: faults 10, cluster 6, exchange 5, testbed 5, train 3, ddp 1; the rest a few seconds each).
LONG_FIRST = ("test_faults.py", "test_cluster.py", "test_testbed.py", "test_exchange.py", "test_train.py",
              "test_ddp.py", "test_fuzz.py", "test_sdist.py", "test_paper.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))
