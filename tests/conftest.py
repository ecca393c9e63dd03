"""Shared fixtures: a real embedded broker and a real local Ray cluster (never mocks)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster

# Property tests judge what comes out, never how fast: Hypothesis's per-example deadline
# measured the machine's load (one example over 200 ms on a busy 2-core machine).
settings.register_profile("molstream", deadline=None)
settings.load_profile("molstream")


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh Tansu broker on a free 127.0.0.1 port (memory storage)."""
    with EmbeddedBroker() as dev:
        yield dev


@pytest.fixture
def ray_cluster() -> Iterator[LocalCluster]:
    """A Ray head with no CPUs; tests add one-CPU Spot nodes as they need them."""
    import ray

    with LocalCluster() as cluster:
        yield cluster
        if ray.is_initialized():
            ray.shutdown()
