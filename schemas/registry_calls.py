"""Requests to a Schema Registry off the event loop: each runs in a thread and is retried with
backoff while the registry is away (logged, counted through ``on_error``)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from confluent_kafka.schema_registry import SchemaRegistryError

from schemas.errors import RegistryAuthError, RegistryError
from schemas.token_sources import TokenRefusedError

log = structlog.get_logger(__name__)

T = TypeVar("T")

NOT_FOUND = 404
AUTH_STATUSES = frozenset({401, 403})
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


class RegistryUnavailableError(RegistryError):
    """Raised when the registry stayed unreachable for longer than the caller would wait."""


def status(exc: Exception) -> int | None:
    """The HTTP status of a registry's answer; None for any other failure."""
    return exc.http_status_code if isinstance(exc, SchemaRegistryError) else None


def transient(exc: Exception) -> bool:
    """Whether a request failing with ``exc`` is worth repeating."""
    if isinstance(exc, SchemaRegistryError):
        code = exc.http_status_code
        return code >= 500 or code in _TRANSIENT_STATUSES or code < 0
    # The network (refused, reset, timed out, a failed TLS handshake) or a garbled answer:
    # waiting is right for both, a record's schema cannot be known any other way.
    return True


class RegistryCalls:
    """Runs a registry request in a thread, retried while it fails transiently.

    ``give_up_after_s`` bounds how long a request is retried (unset: until it succeeds);
    ``refuse`` turns refused credentials of the token source into the registry's refusal.
    """

    def __init__(
        self,
        url: str,
        *,
        on_error: Callable[[str], None],
        refuse: Callable[[RegistryError], RegistryError],
        give_up_after_s: float | None,
        backoff_max_s: float,
    ) -> None:
        self._url = url
        self._on_error = on_error
        self._refuse = refuse
        self._give_up_after_s = math.inf if give_up_after_s is None else give_up_after_s
        self._backoff_max_s = backoff_max_s

    async def __call__(
        self,
        operation: str,
        request: Callable[..., T],
        *args: Any,
    ) -> T:
        """``request(*args)`` in a thread, retried with backoff while it fails transiently;
        a refusal (a 4xx answer) is raised."""
        backoff_s = 0.5
        deadline = time.monotonic() + self._give_up_after_s
        while True:
            try:
                return await asyncio.to_thread(request, *args)
            except TokenRefusedError as exc:
                refusal = RegistryAuthError(f"schema registry {self._url}: {exc}")
                raise self._refuse(refusal) from None
            except Exception as exc:
                if not transient(exc):
                    raise
                error = exc
            self._on_error(operation)
            if time.monotonic() + backoff_s > deadline:
                raise RegistryUnavailableError(
                    f"schema registry {self._url} unreachable: {type(error).__name__}: {error}"
                ) from error
            log.warning(
                "schema registry unreachable, will retry",
                url=self._url,
                operation=operation,
                error=f"{type(error).__name__}: {error}",
                retry_in_s=backoff_s,
            )
            await asyncio.sleep(backoff_s)
            backoff_s = min(self._backoff_max_s, backoff_s * 2)
