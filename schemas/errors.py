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
    """Raised when a value is in no framing molstream reads: neither Avro single-object
    encoding (0xC3 0x01) nor Schema Registry framing (0x00, or a ``__value_schema_id``
    header)."""

    reason = "bad_magic"


class UnknownSchemaError(DecodeError):
    """Raised when a value names a schema (fingerprint or registry id) this reader cannot find."""

    reason = "unknown_schema"


class CorruptBodyError(DecodeError):
    """Raised when the Avro body does not decode with the schema its header names."""

    reason = "corrupt_body"


class TooLargeError(DecodeError):
    """Raised when a record, or a part of it (key, headers, molecule id), is larger than its
    bound: refused before it is decoded further."""

    reason = "too_large"


class NoRegistryError(DecodeError):
    """Raised when a value is in Schema Registry framing and no registry is configured."""

    reason = "no_schema_registry"


class IncompatibleSchemaError(DecodeError):
    """Raised when a value's writer schema (from the registry) cannot resolve to the reader's."""

    reason = "incompatible_schema"


class RegistryError(Exception):
    """Raised when the Schema Registry refuses a request for good (not a passing outage):
    a schema it rejects as incompatible or invalid, credentials it does not accept."""


class RefusedSchemaError(IncompatibleSchemaError):
    """Raised when a writer schema from the registry breaks a rule of
    :mod:`schemas.admission` (too large, too deep, recursive, zero-byte items…): no body is
    decoded with it. ``rule`` names the rule."""

    reason = "refused_schema"

    def __init__(self, source: str, rule: str, detail: str) -> None:
        super().__init__(f"{source} refused ({rule}): {detail}")
        self.rule = rule


class RegistryRefusedError(UnknownSchemaError):
    """Raised when the registry answers a schema fetch with a client error other than
    "not found" or "unauthorized" (a 400 or 422, say): the record's schema cannot be had."""

    reason = "registry_refused"


class RegistryAuthError(RegistryError):
    """Raised when the registry answers 401 or 403: molstream's credentials are not
    accepted; no record can be read until an operator fixes the registry settings."""
