"""Record values in either framing: decoding per record by its first bytes and headers,
encoding in the framing a command writes (see :mod:`schemas.framing`)."""

from __future__ import annotations

from typing import Generic, TypeVar

from schemas.codec import Codec
from schemas.errors import NoRegistryError
from schemas.framing import (
    Headers,
    SchemaRef,
    SingleObject,
    Writer,
    describe_ref,
    frame_of,
    registry_framed,
)
from schemas.registry import SchemaRegistry, subject_of

R = TypeVar("R")


class SchemaPendingError(Exception):
    """Raised by :meth:`Decoder.decode` when a record's writer schema is not cached yet.

    Not a :class:`schemas.DecodeError`: the record may be fine. Decode it with
    :meth:`Decoder.decode_async`, which fetches the schema first (off the event loop).
    """

    def __init__(self, ref: SchemaRef) -> None:
        super().__init__(f"{describe_ref(ref)} not fetched yet")
        self.ref = ref


class WriterSchemas:
    """The writer schemas that registry-framed values name, from the registry's cache; without
    a registry, registry-framed values are a clear decode error."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self._registry = registry
        # One tuple per schema: a batch pickles it once however many records share it.
        self._known: dict[SchemaRef, Writer] = {}

    def writer(self, value: bytes | None, headers: Headers = ()) -> Writer | None:
        """The writer of a registry-framed value, None for single-object encoding (no I/O);
        raises a :class:`schemas.DecodeError`, or :class:`SchemaPendingError` when the
        schema must be fetched first."""
        framed = frame_of(value, headers)
        return None if isinstance(framed, SingleObject) else self.of(framed.ref)

    async def fetch(self, value: bytes | None, headers: Headers = ()) -> Writer | None:
        """:meth:`writer`, fetching the schema first if it is not cached (waiting while the
        registry is away); raises a :class:`schemas.DecodeError`."""
        headers = list(headers)
        try:
            return self.writer(value, headers)
        except SchemaPendingError as pending:
            assert self._registry is not None  # only a registry leaves a schema pending
            await self._registry.writer_schema(pending.ref)
        return self.writer(value, headers)

    def of(self, ref: SchemaRef) -> Writer:
        """The writer schema ``ref`` names (see :meth:`writer`)."""
        known = self._known.get(ref)
        if known is not None:
            return known
        source = describe_ref(ref)
        if self._registry is None:
            raise NoRegistryError(f"Schema Registry framing ({source}): set --schema-registry-url")
        schema = self._registry.cached(ref)
        if schema is None:
            raise SchemaPendingError(ref)
        self._known[ref] = (source, schema)
        return self._known[ref]


class Decoder(Generic[R]):
    """Decodes values in single-object encoding or Schema Registry framing into the codec's
    current record (see :class:`WriterSchemas` for the registry's part)."""

    def __init__(self, codec: Codec[R], registry: SchemaRegistry | None = None) -> None:
        self._codec = codec
        self._writers = WriterSchemas(registry)

    def decode(self, value: bytes | None, headers: Headers = ()) -> R:
        """Decode with what is known now (no I/O); raises a :class:`schemas.DecodeError`,
        or :class:`SchemaPendingError` when the writer schema must be fetched first."""
        framed = frame_of(value, headers)
        if isinstance(framed, SingleObject):
            return self._codec.decode_single_object(framed)
        source, schema = self._writers.of(framed.ref)
        return self._codec.decode_body(framed.body, schema, source=source)

    async def decode_async(self, value: bytes | None, headers: Headers = ()) -> R:
        """Decode, fetching the writer schema first if it is not cached (waiting while the
        registry is away); raises a :class:`schemas.DecodeError`."""
        headers = list(headers)
        await self._writers.fetch(value, headers)
        return self.decode(value, headers)


class Encoder(Generic[R]):
    """Encodes records in single-object encoding or, given the id their schema was
    registered under, in Schema Registry framing."""

    def __init__(self, codec: Codec[R], schema_id: int | None = None) -> None:
        self._codec = codec
        self.schema_id = schema_id

    @classmethod
    async def for_topic(
        cls, codec: Codec[R], topic: str, registry: SchemaRegistry | None
    ) -> Encoder[R]:
        """An encoder for ``topic``: registry framing under subject ``<topic>-value`` (the
        schema registered now, once) when a registry is given, else single-object."""
        if registry is None:
            return cls(codec)
        return cls(codec, await registry.register(subject_of(topic), codec.text))

    def encode(self, record: R) -> bytes:
        """``record`` as a value in this encoder's framing."""
        if self.schema_id is None:
            return self._codec.encode(record)
        return registry_framed(self.schema_id, self._codec.encode_body(record))
