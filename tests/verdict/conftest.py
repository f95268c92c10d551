"""Fixtures of the verdict tests."""

from __future__ import annotations

import pytest
from verdict_helpers import make_task


@pytest.fixture(scope="session")
def deploy_task():
    """The candidate right on 150 of 200 examples, the baseline on 100 (a subset): DEPLOY."""
    return make_task()
