"""A Schema Registry, reached through confluent-kafka's ``SchemaRegistryClient``, off the
event loop.

Every request runs in a thread and is retried with backoff while the registry is away
(:mod:`schemas.registry_calls`); writer schemas are cached by id and GUID after their first
fetch and admitted once (:mod:`schemas.registry_cache`), so decoding a record whose schema is
known makes no registry call at all. Concurrent fetches of one schema share one request.
A schema the registry does not have (or refuses to give) is remembered for a while;
credentials it refuses are a :class:`RegistryAuthError`, never waited out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

import structlog
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    SchemaRegistryError,
)

from schemas.errors import (
    DecodeError,
    IncompatibleSchemaError,
    RegistryAuthError,
    RegistryError,
    RegistryRefusedError,
    UnknownSchemaError,
)
from schemas.framing import SchemaRef, describe_ref
from schemas.registry_cache import WriterCache
from schemas.registry_calls import AUTH_STATUSES, NOT_FOUND, RegistryCalls, status
from schemas.registry_settings import RegistrySettings

log = structlog.get_logger(__name__)

COMPATIBILITY = "BACKWARD"
"""What molstream's subjects get unless they have a level of their own: a new schema
version must read every record written with the previous one."""


def subject_of(topic: str) -> str:
    """The value subject of ``topic`` under TopicNameStrategy."""
    return f"{topic}-value"


class SchemaRegistry:
    """Cached, non-blocking, retrying access to a Schema Registry: ``start``, ``stop``
    (safe twice), ``async with``.

    ``give_up_after_s`` bounds how long a request is retried (for commands a person runs);
    unset, it is retried until it succeeds (for the service, which must lose nothing).
    ``clock`` dates the "not found" cache; ``client`` makes the client (a fake in tests).
    """

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        on_error: Callable[[str], None] = lambda operation: None,
        give_up_after_s: float | None = None,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        client: Callable[[dict[str, Any]], SchemaRegistryClient] = SchemaRegistryClient,
    ) -> None:
        if settings.schema_registry_url is None:
            raise ValueError("no --schema-registry-url")
        self.url = settings.schema_registry_url
        self._settings = settings
        self._call = RegistryCalls(
            self.url,
            on_error=on_error,
            refuse=self._refuse,
            give_up_after_s=give_up_after_s,
            backoff_max_s=backoff_max_s,
        )
        self._cache = WriterCache(clock)
        self._new_client = client
        self._client: SchemaRegistryClient | None = None
        self._refused: asyncio.Future[None] | None = None
        self._fetching: dict[SchemaRef, asyncio.Task[dict[str, Any]]] = {}

    async def start(self) -> None:
        """Create the client (no request yet: see :meth:`prime` and :meth:`register`)."""
        if self._client is None:
            self._client = self._new_client(self._settings.registry_client_conf())
            self._refused = asyncio.get_running_loop().create_future()

    async def stop(self) -> None:
        """Cancel fetches in progress and close the client; safe twice."""
        for task in self._fetching.values():
            task.cancel()
        await asyncio.gather(*self._fetching.values(), return_exceptions=True)
        client, self._client = self._client, None
        refused, self._refused = self._refused, None
        if refused is not None and refused.done():
            refused.exception()  # seen: it was logged and raised where it happened
        if client is not None:
            client.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def cached(self, ref: SchemaRef) -> dict[str, Any] | None:
        """The writer schema ``ref`` names if it was fetched before; never a request.
        Raises the :class:`DecodeError` of one found unusable, or missing (for a while)."""
        return self._cache.get(ref)

    async def refused(self) -> None:
        """Wait until the registry refuses molstream's credentials for a schema fetch, then
        raise that :class:`RegistryAuthError` (a routine of the service: it ends the process,
        since no record naming an unknown schema could be read until the settings change)."""
        self._started()
        assert self._refused is not None
        await asyncio.shield(self._refused)

    async def writer_schema(self, ref: SchemaRef) -> dict[str, Any]:
        """The parsed writer schema ``ref`` names, fetched once (waiting while the registry
        is away). Raises :class:`UnknownSchemaError` if the registry does not have it and
        :class:`IncompatibleSchemaError` (or :class:`RefusedSchemaError`) if it is no Avro
        record schema fit to decode with; :class:`RegistryAuthError` on a 401 or 403."""
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
            if status(exc) != NOT_FOUND:
                raise self._refusal(exc) from exc
            log.info("subject has no schema yet", subject=subject)
            return
        refs = [latest.schema_id, None if latest.guid is None else uuid.UUID(latest.guid)]
        try:
            for ref in refs:
                if ref is not None:
                    self._cache.remember(ref, latest.schema)
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
                if status(exc) != NOT_FOUND:
                    raise
                level = await self._call(
                    "set_compatibility", client.set_compatibility, subject, COMPATIBILITY
                )
            registered = await self._call(
                "register", client.register_schema_full_response, subject, Schema(text, "AVRO")
            )
        except SchemaRegistryError as exc:
            if status(exc) in AUTH_STATUSES:
                raise self._refusal(exc) from exc
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
            # An outage is waited out (the record is fine, its schema just not at hand); an
            # answer is not: "no" ends the record (or, for credentials, the process).
            schema = await self._call("get_schema", request, arg)
        except SchemaRegistryError as exc:
            raise self._fetch_failed(ref, exc) from exc
        return self._cache.remember(ref, schema)

    def _fetch_failed(self, ref: SchemaRef, exc: SchemaRegistryError) -> Exception:
        code = exc.http_status_code
        if code in AUTH_STATUSES:
            return self._refuse(self._refusal(exc))
        error: DecodeError
        if code == NOT_FOUND:
            error = UnknownSchemaError(f"{describe_ref(ref)} is not in {self.url}")
        else:
            error = RegistryRefusedError(
                f"schema registry {self.url} refused {describe_ref(ref)}: HTTP {code}: "
                f"{exc.error_message}"
            )
        self._cache.missing(ref, error)
        return error

    def _refusal(self, exc: SchemaRegistryError) -> RegistryAuthError | RegistryError:
        """The error of a refused request: refused credentials named apart, with the
        settings to check (never their values)."""
        if exc.http_status_code in AUTH_STATUSES:
            return RegistryAuthError(
                f"schema registry {self.url} refused molstream's credentials "
                f"(HTTP {exc.http_status_code}): check {self._settings.credential_options()}"
            )
        return RegistryError(f"schema registry {self.url}: {exc}")

    def _refuse(self, refusal: RegistryError) -> RegistryError:
        """``refusal``, also raised by :meth:`refused` (the first one)."""
        if self._refused is not None and not self._refused.done():
            self._refused.set_exception(refusal)
        return refusal
