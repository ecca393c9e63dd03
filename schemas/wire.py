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


class Decoder(Generic[R]):
    """Decodes values in single-object encoding or Schema Registry framing into the codec's
    current record; without a registry, registry-framed values are a clear decode error."""

    def __init__(self, codec: Codec[R], registry: SchemaRegistry | None = None) -> None:
        self._codec = codec
        self._registry = registry

    def decode(self, value: bytes | None, headers: Headers = ()) -> R:
        """Decode with what is known now (no I/O); raises a :class:`schemas.DecodeError`,
        or :class:`SchemaPendingError` when the writer schema must be fetched first."""
        framed = frame_of(value, headers)
        if isinstance(framed, SingleObject):
            return self._codec.decode_single_object(framed)
        source = describe_ref(framed.ref)
        if self._registry is None:
            raise NoRegistryError(f"Schema Registry framing ({source}): set --schema-registry-url")
        writer = self._registry.cached(framed.ref)
        if writer is None:
            raise SchemaPendingError(framed.ref)
        return self._codec.decode_body(framed.body, writer, source=source)

    async def decode_async(self, value: bytes | None, headers: Headers = ()) -> R:
        """Decode, fetching the writer schema first if it is not cached (waiting while the
        registry is away); raises a :class:`schemas.DecodeError`."""
        headers = list(headers)
        try:
            return self.decode(value, headers)
        except SchemaPendingError as pending:
            assert self._registry is not None  # only a registry leaves a schema pending
            await self._registry.writer_schema(pending.ref)
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
