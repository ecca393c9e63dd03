"""The errors of the wire format: every way a record value can fail to decode."""


class DecodeError(ValueError):
    """Raised when a record value cannot be turned into a record; the base of the tree.

    ``reason`` is a short stable tag used in dead-letter headers and metrics.
    """

    reason = "decode"


class EmptyRecordError(DecodeError):
    """Raised when a record has no value (null or zero bytes)."""

    reason = "empty"


class BadMagicError(DecodeError):
    """Raised when a value does not start with the Avro single-object marker 0xC3 0x01."""

    reason = "bad_magic"


class UnknownSchemaError(DecodeError):
    """Raised when a value names a schema fingerprint this reader does not know."""

    reason = "unknown_schema"


class CorruptBodyError(DecodeError):
    """Raised when the Avro body does not decode with the schema its fingerprint names."""

    reason = "corrupt_body"
