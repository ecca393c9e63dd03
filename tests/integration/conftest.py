"""Fixtures of the integration tests: the test Schema Registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.schema_registry import SchemaRegistryServer


@pytest.fixture
def registry_server() -> Iterator[SchemaRegistryServer]:
    """A test Schema Registry on a free port, stopped after the test."""
    with SchemaRegistryServer() as server:
        yield server
