import os

import pytest

from nslab import Namespace, cleanup_stale


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError('integration tests need root (network namespaces)')
    cleanup_stale()


@pytest.fixture
def ns():
    """A fresh, empty network namespace, deleted after the test whatever happens."""
    host = Namespace()
    try:
        yield host
    finally:
        host.close()
