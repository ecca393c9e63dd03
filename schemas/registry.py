"""A Schema Registry, reached through confluent-kafka's ``SchemaRegistryClient``, off the
event loop.

Every request runs in a thread and is retried with backoff while the registry is away
(logged, counted through ``on_error``); writer schemas are cached by id and GUID after their
first fetch and admitted (:mod:`schemas.admission`) once, so decoding a record whose schema is
known makes no registry call at all.
Concurrent fetches of one schema share one request.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, Self, TypeVar

import structlog
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    SchemaRegistryError,
)

from schemas.admission import admit
from schemas.errors import IncompatibleSchemaError, RegistryError, UnknownSchemaError
from schemas.framing import SchemaRef, describe_ref
from schemas.registry_settings import RegistrySettings

log = structlog.get_logger(__name__)

T = TypeVar("T")

COMPATIBILITY = "BACKWARD"
"""What molstream's subjects get unless they have a level of their own: a new schema
version must read every record written with the previous one."""

_NOT_FOUND = 404
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


class RegistryUnavailableError(RegistryError):
    """Raised when the registry stayed unreachable for longer than the caller would wait."""


def _not_found(exc: Exception) -> bool:
    return isinstance(exc, SchemaRegistryError) and exc.http_status_code == _NOT_FOUND


def _transient(exc: Exception) -> bool:
    if isinstance(exc, SchemaRegistryError):
        status = exc.http_status_code
        return status >= 500 or status in _TRANSIENT_STATUSES or status < 0
    # The network (refused, reset, timed out, a failed TLS handshake) or a garbled answer:
    # waiting is right for both, a record's schema cannot be known any other way.
    return True


def subject_of(topic: str) -> str:
    """The value subject of ``topic`` under TopicNameStrategy."""
    return f"{topic}-value"


class SchemaRegistry:
    """Cached, non-blocking, retrying access to a Schema Registry: ``start``, ``stop``
    (safe twice), ``async with``.

    ``give_up_after_s`` bounds how long a request is retried (for commands a person runs);
    unset, it is retried until it succeeds (for the service, which must lose nothing).
    """

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        on_error: Callable[[str], None] = lambda operation: None,
        give_up_after_s: float | None = None,
        backoff_max_s: float = 30.0,
    ) -> None:
        if settings.schema_registry_url is None:
            raise ValueError("no --schema-registry-url")
        self.url = settings.schema_registry_url
        self._settings = settings
        self._on_error = on_error
        self._give_up_after_s = math.inf if give_up_after_s is None else give_up_after_s
        self._backoff_max_s = backoff_max_s
        self._client: SchemaRegistryClient | None = None
        self._writers: dict[SchemaRef, dict[str, Any]] = {}
        self._unusable: dict[SchemaRef, IncompatibleSchemaError] = {}  # why it cannot be read
        self._fetching: dict[SchemaRef, asyncio.Task[dict[str, Any]]] = {}

    async def start(self) -> None:
        """Create the client (no request yet: see :meth:`prime` and :meth:`register`)."""
        if self._client is None:
            self._client = SchemaRegistryClient(self._settings.registry_client_conf())

    async def stop(self) -> None:
        """Cancel fetches in progress and close the client; safe twice."""
        for task in self._fetching.values():
            task.cancel()
        await asyncio.gather(*self._fetching.values(), return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def cached(self, ref: SchemaRef) -> dict[str, Any] | None:
        """The writer schema ``ref`` names if it was fetched before; never a request.
        Raises :class:`IncompatibleSchemaError` for one fetched and found unusable."""
        unusable = self._unusable.get(ref)
        if unusable is not None:
            raise unusable.with_traceback(None)  # raised again and again: keep no frames
        return self._writers.get(ref)

    async def writer_schema(self, ref: SchemaRef) -> dict[str, Any]:
        """The parsed writer schema ``ref`` names, fetched once (waiting while the registry
        is away). Raises :class:`UnknownSchemaError` if the registry does not have it and
        :class:`IncompatibleSchemaError` if it is no Avro record schema."""
        known = self.cached(ref)
        if known is not None:
            return known
        task = self._fetching.get(ref)
        if task is None:
            task = asyncio.create_task(self._fetch(ref), name=f"schema-{ref}")
            self._fetching[ref] = task
            task.add_done_callback(lambda _: self._fetching.pop(ref, None))
        # A waiter that is cancelled (its partition revoked) leaves the fetch to the others.
        return await asyncio.shield(task)

    async def prime(self, subject: str) -> None:
        """Cache the latest schema of ``subject`` (if it has one): the schema most records
        will name. Waits while the registry is away, so it also checks it is reachable."""
        client = self._started()
        try:
            latest = await self._call("get_latest_version", client.get_latest_version, subject)
        except SchemaRegistryError as exc:
            if not _not_found(exc):
                raise RegistryError(f"schema registry {self.url}: {exc}") from exc
            log.info("subject has no schema yet", subject=subject)
            return
        refs = [latest.schema_id, None if latest.guid is None else uuid.UUID(latest.guid)]
        try:
            for ref in refs:
                if ref is not None:
                    self._remember(ref, latest.schema)
        except IncompatibleSchemaError as exc:
            log.warning("latest schema of the subject is unusable", subject=subject, error=str(exc))

    async def register(self, subject: str, text: str) -> int:
        """Register the Avro schema ``text`` under ``subject`` (BACKWARD compatibility unless
        the subject has a level of its own) and return its id; an identical schema
        registered before keeps its id. Raises :class:`RegistryError` if it is refused."""
        client = self._started()
        try:
            try:
                level = await self._call("get_compatibility", client.get_compatibility, subject)
            except SchemaRegistryError as exc:
                if not _not_found(exc):
                    raise
                level = await self._call(
                    "set_compatibility", client.set_compatibility, subject, COMPATIBILITY
                )
            registered = await self._call(
                "register", client.register_schema_full_response, subject, Schema(text, "AVRO")
            )
        except SchemaRegistryError as exc:
            raise RegistryError(
                f"schema registry {self.url} refused the schema for {subject}: {exc}"
            ) from exc
        assert registered.schema_id is not None
        log.info(
            "schema registered",
            subject=subject,
            schema_id=registered.schema_id,
            compatibility=level,
        )
        return registered.schema_id

    def _started(self) -> SchemaRegistryClient:
        if self._client is None:
            raise RuntimeError("schema registry client is not started")
        return self._client

    async def _fetch(self, ref: SchemaRef) -> dict[str, Any]:
        client = self._started()
        if isinstance(ref, uuid.UUID):
            request: Callable[[Any], Schema] = client.get_schema_by_guid
            arg: Any = str(ref)
        else:
            request, arg = client.get_schema, ref
        try:
            # Only "not found" settles a record's fate: anything else (a 401 after a
            # credential rotation, say) is waited out, loudly, rather than dead-lettered.
            schema = await self._call("get_schema", request, arg, retry=lambda e: not _not_found(e))
        except SchemaRegistryError as exc:
            raise UnknownSchemaError(f"{describe_ref(ref)} is not in {self.url}") from exc
        return self._remember(ref, schema)

    def _remember(self, ref: SchemaRef, schema: Schema) -> dict[str, Any]:
        try:
            parsed = _parse(schema, ref)
        except IncompatibleSchemaError as exc:
            self._unusable[ref] = exc
            raise
        self._writers[ref] = parsed
        return parsed

    async def _call(
        self,
        operation: str,
        request: Callable[..., T],
        *args: Any,
        retry: Callable[[Exception], bool] = _transient,
    ) -> T:
        """``request(*args)`` in a thread, retried with backoff while it fails in a way
        ``retry`` accepts (by default: transiently); a refusal (a 4xx answer) is raised."""
        backoff_s = 0.5
        deadline = time.monotonic() + self._give_up_after_s
        while True:
            try:
                return await asyncio.to_thread(request, *args)
            except Exception as exc:
                if not retry(exc):
                    raise
                error = exc
            self._on_error(operation)
            if time.monotonic() + backoff_s > deadline:
                raise RegistryUnavailableError(
                    f"schema registry {self.url} unreachable: {type(error).__name__}: {error}"
                ) from error
            log.warning(
                "schema registry unreachable, will retry",
                url=self.url,
                operation=operation,
                error=f"{type(error).__name__}: {error}",
                retry_in_s=backoff_s,
            )
            await asyncio.sleep(backoff_s)
            backoff_s = min(self._backoff_max_s, backoff_s * 2)


def _parse(schema: Schema, ref: SchemaRef) -> dict[str, Any]:
    """A registry's schema as a parsed, admitted Avro record schema (not Protobuf, JSON
    Schema, …, nor one :mod:`schemas.admission` refuses)."""
    kind = schema.schema_type or "AVRO"
    if kind != "AVRO":
        raise IncompatibleSchemaError(f"{describe_ref(ref)} is a {kind} schema, not Avro")
    if schema.references:
        raise IncompatibleSchemaError(
            f"{describe_ref(ref)} uses schema references, which molstream does not resolve"
        )
    return admit(schema.schema_str or "", describe_ref(ref))
