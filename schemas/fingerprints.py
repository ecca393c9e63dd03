"""CRC-64-AVRO fingerprints of a schema: the specification's, and Apache Python avro's alias.

The Avro specification's Parsing Canonical Form drops every attribute but a few, so a
logical-typed ``{"type": "long", "logicalType": "timestamp-millis"}`` becomes ``"long"``.
Apache's Python ``avro`` library (1.10 to 1.12 at least) writes it as ``{"type":"long"}``
instead, so the fingerprint it puts into single-object encoding differs from the spec's for
any schema with a logical type on a primitive. A reader accepts both for the same schema.
"""

from __future__ import annotations

import json
from typing import Any

from fastavro.schema import fingerprint, to_parsing_canonical_form


def _crc64(canonical: str) -> bytes:
    """The 8-byte fingerprint, little-endian as single-object encoding stores it."""
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def spec_fingerprint(schema: dict[str, Any]) -> bytes:
    """The fingerprint of the specification's Parsing Canonical Form of a parsed schema."""
    return _crc64(to_parsing_canonical_form(schema))


def apache_avro_fingerprint(schema: dict[str, Any]) -> bytes:
    """The fingerprint Apache's Python ``avro`` computes for the same parsed schema."""
    canonical = json.loads(to_parsing_canonical_form(schema))
    return _crc64(json.dumps(_apache_form(canonical, schema), separators=(",", ":")))


def fingerprints(schema: dict[str, Any]) -> set[bytes]:
    """Every fingerprint a writer may have framed ``schema`` with (one or two)."""
    return {spec_fingerprint(schema), apache_avro_fingerprint(schema)}


def _apache_form(canonical: Any, parsed: Any) -> Any:
    """``canonical`` (the spec's form) with each logical-typed primitive written as
    ``{"type": primitive}``; ``parsed`` is the same schema as fastavro parsed it."""
    if isinstance(canonical, str):
        is_logical = isinstance(parsed, dict) and "logicalType" in parsed
        return {"type": canonical} if is_logical else canonical
    if isinstance(canonical, list):  # a union: branches in the same order
        return [_apache_form(c, p) for c, p in zip(canonical, parsed, strict=True)]
    if not isinstance(canonical, dict) or not isinstance(parsed, dict):
        return canonical
    kind = canonical.get("type")
    if kind == "record" or kind == "error":
        fields = [
            {**c, "type": _apache_form(c["type"], p["type"])}
            for c, p in zip(canonical["fields"], parsed["fields"], strict=True)
        ]
        return {**canonical, "fields": fields}
    if kind == "array":
        return {**canonical, "items": _apache_form(canonical["items"], parsed["items"])}
    if kind == "map":
        return {**canonical, "values": _apache_form(canonical["values"], parsed["values"])}
    return canonical
