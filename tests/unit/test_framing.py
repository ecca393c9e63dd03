"""Unit tests for the pure wire-format parts of issue 11: framing detection, schema ids in
values and headers, the Apache avro fingerprint alias, which headers travel on, and the
decoder/encoder without a registry."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import avro.io
import avro.schema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import MOLECULE_CODEC, DecodeError, Molecule, load_schema
from schemas.codec import parse_schema, schema_text
from schemas.errors import (
    BadMagicError,
    CorruptBodyError,
    EmptyRecordError,
    IncompatibleSchemaError,
    NoRegistryError,
    UnknownSchemaError,
)
from schemas.fingerprints import apache_avro_fingerprint, fingerprints, spec_fingerprint
from schemas.framing import (
    VALUE_SCHEMA_ID_HEADER,
    RegistryFramed,
    SingleObject,
    describe_ref,
    frame_of,
    parse_schema_id_header,
    registry_framed,
    single_object,
)
from schemas.headers import carried_headers
from schemas.wire import Decoder, Encoder

WHEN = datetime(2026, 3, 14, 15, 9, 26, 535_000, tzinfo=UTC)
GUID = uuid.UUID("4f0e9a1c-7d3b-4e55-9a62-0c1f2b3d4e5f")

# -- framing ---------------------------------------------------------------------------------


def test_single_object_is_told_by_c301() -> None:
    value = MOLECULE_CODEC.encode(Molecule("m", "C"))
    assert frame_of(value) == SingleObject(value[2:10], value[10:])


def test_registry_framing_is_zero_then_a_big_endian_id() -> None:
    assert frame_of(b"\x00\x00\x00\x01\x02body") == RegistryFramed(258, b"body")
    assert frame_of(b"\x00\xff\xff\xff\xff") == RegistryFramed(2**32 - 1, b"")


def test_the_header_names_the_schema_and_the_value_is_the_body_alone() -> None:
    guid_header = [("traceparent", b"x"), (VALUE_SCHEMA_ID_HEADER, b"\x01" + GUID.bytes)]
    assert frame_of(b"\x02mC\x00\x00", guid_header) == RegistryFramed(GUID, b"\x02mC\x00\x00")
    id_header = [(VALUE_SCHEMA_ID_HEADER, b"\x00\x00\x00\x00\x07")]
    # The header wins even over a body that happens to start like a framing.
    assert frame_of(b"\xc3\x01abc", id_header) == RegistryFramed(7, b"\xc3\x01abc")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\x01" + GUID.bytes, GUID),
        (b"\x00\x00\x00\x00\x2a", 42),
    ],
)
def test_schema_id_header_forms(header: bytes, expected: object) -> None:
    assert parse_schema_id_header(header) == expected


@pytest.mark.parametrize(
    "header", [None, b"", b"\x01", b"\x01" + GUID.bytes[:15], b"\x00\x00\x01", b"\x02" * 17, b"7"]
)
def test_a_malformed_schema_id_header_is_a_bad_magic(header: bytes | None) -> None:
    with pytest.raises(BadMagicError, match=VALUE_SCHEMA_ID_HEADER):
        parse_schema_id_header(header)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (None, EmptyRecordError, "no value"),
        (b"", EmptyRecordError, "no value"),
        (b"{}", BadMagicError, "neither Avro single-object encoding (c301) nor Schema Registry"),
        (b"\xc3\x01\x00", BadMagicError, "shorter than the single-object header"),
        (b"\x00\x00\x01", BadMagicError, "shorter than the Schema Registry header"),
    ],
)
def test_what_is_no_framing(value: bytes | None, error: type[DecodeError], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        frame_of(value)


@given(st.integers(0, 2**32 - 1), st.binary(max_size=64))
def test_registry_framing_round_trips(schema_id: int, body: bytes) -> None:
    assert frame_of(registry_framed(schema_id, body)) == RegistryFramed(schema_id, body)


@given(st.binary(min_size=8, max_size=8), st.binary(max_size=64))
def test_single_object_round_trips(fingerprint: bytes, body: bytes) -> None:
    assert frame_of(single_object(fingerprint, body)) == SingleObject(fingerprint, body)


@given(
    st.binary(max_size=40),
    st.lists(st.tuples(st.sampled_from(["a", VALUE_SCHEMA_ID_HEADER]), st.binary(max_size=18))),
)
def test_any_value_is_framed_or_a_decode_error(value: bytes, headers: list[Any]) -> None:
    try:
        framed = frame_of(value, headers)
    except DecodeError as exc:
        assert isinstance(exc, EmptyRecordError | BadMagicError)
    else:
        assert isinstance(framed, SingleObject | RegistryFramed)


def test_describe_ref() -> None:
    assert describe_ref(7) == "schema id 7"
    assert describe_ref(GUID) == f"schema guid {GUID}"


# -- fingerprints ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["molecule", "molecule.v1", "prediction"])
def test_both_fingerprints_match_the_libraries(name: str) -> None:
    schema = load_schema(name)
    apache = avro.schema.parse(schema_text(name))
    assert apache_avro_fingerprint(schema) == apache.fingerprint()
    assert fingerprints(schema) == {spec_fingerprint(schema), apache.fingerprint()}


def test_the_alias_differs_only_where_a_logical_type_is() -> None:
    v1, v2 = load_schema("molecule.v1"), load_schema("molecule")
    assert apache_avro_fingerprint(v1) == spec_fingerprint(v1)  # no logical type
    assert apache_avro_fingerprint(v2) != spec_fingerprint(v2)  # submitted_at


def test_records_written_before_keep_their_fingerprints() -> None:
    """Docs, defaults and the enum default do not change a Parsing Canonical Form: records
    framed with the fingerprints the schemas had before still decode."""
    assert spec_fingerprint(load_schema("molecule")).hex() == "bb52d71c8f67b8f8"
    assert spec_fingerprint(load_schema("molecule.v1")).hex() == "21e5ecde8a880e79"
    assert spec_fingerprint(load_schema("prediction")).hex() == "8a276181d737a01a"


def test_a_v2_molecule_framed_by_apache_avro_decodes() -> None:
    schema = avro.schema.parse(schema_text("molecule"))
    body = io.BytesIO()
    datum = {"id": "a1", "smiles": "CCO", "properties": {"k": "v"}, "submitted_at": WHEN}
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(body))
    value = b"\xc3\x01" + schema.fingerprint() + body.getvalue()
    assert MOLECULE_CODEC.decode(value) == Molecule("a1", "CCO", {"k": "v"}, WHEN)


_LOGICAL = st.sampled_from(
    [
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "long", "logicalType": "timestamp-micros"},
        {"type": "int", "logicalType": "date"},
        {"type": "int", "logicalType": "time-millis"},
        {"type": "string", "logicalType": "uuid"},
        {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
    ]
)
_PLAIN = st.sampled_from(["null", "boolean", "int", "long", "double", "string", "bytes"])
_TYPES = st.recursive(
    _LOGICAL | _PLAIN,
    lambda inner: (
        st.builds(lambda t: {"type": "array", "items": t}, inner)
        | st.builds(lambda t: {"type": "map", "values": t}, inner)
        | st.builds(
            lambda a, b: ["null", a] if a != "null" else ["null", b], inner, _LOGICAL | _PLAIN
        )
    ),
    max_leaves=4,
)


@given(st.lists(_TYPES, min_size=1, max_size=5))
def test_the_alias_is_what_apache_avro_computes(types: list[Any]) -> None:
    fields = [{"name": f"f{i}", "type": t} for i, t in enumerate(types)]
    text = json.dumps({"type": "record", "name": "R", "namespace": "x", "fields": fields})
    try:
        apache = avro.schema.parse(text)
    except avro.errors.SchemaParseException:
        return  # e.g. a union of two arrays: invalid for both libraries
    assert apache_avro_fingerprint(parse_schema(text)) == apache.fingerprint()


# -- headers ---------------------------------------------------------------------------------


def test_headers_travel_on_but_molstreams_own_and_the_schema_ids() -> None:
    headers = [
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("molstream.error.stage", b"decode"),
        ("tracestate", b"congo=t61rcWkgMzE"),
        (VALUE_SCHEMA_ID_HEADER, b"\x01" + GUID.bytes),
        ("__key_schema_id", b"\x00\x00\x00\x00\x01"),
        ("correlation-id", b"req-7"),
        ("traceparent", b"duplicate keys are kept"),
    ]
    assert carried_headers(headers) == [headers[0], headers[2], headers[5], headers[6]]


@given(st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=4)), max_size=8))
def test_carried_headers_keep_order_and_drop_only_reserved(
    headers: list[tuple[str, bytes]],
) -> None:
    kept = carried_headers(headers)
    reserved = {VALUE_SCHEMA_ID_HEADER, "__key_schema_id"}
    assert kept == [
        h for h in headers if not h[0].startswith("molstream.") and h[0] not in reserved
    ]


# -- decoder and encoder without a registry --------------------------------------------------


def test_without_a_registry_registry_framing_names_the_flag() -> None:
    decoder = Decoder(MOLECULE_CODEC)
    with pytest.raises(NoRegistryError) as info:
        decoder.decode(registry_framed(17, b"\x02mC\x00\x00"))
    assert str(info.value) == "Schema Registry framing (schema id 17): set --schema-registry-url"
    assert info.value.reason == "no_schema_registry"
    with pytest.raises(NoRegistryError, match=f"schema guid {GUID}"):
        decoder.decode(b"\x02mC\x00\x00", [(VALUE_SCHEMA_ID_HEADER, b"\x01" + GUID.bytes)])


def test_the_decoder_reads_single_object_of_every_known_version() -> None:
    decoder = Decoder(MOLECULE_CODEC)
    molecule = Molecule("m", "CCN", {"a": "b"}, WHEN)
    assert decoder.decode(MOLECULE_CODEC.encode(molecule)) == molecule
    v1 = MOLECULE_CODEC.encode_with(load_schema("molecule.v1"), {"id": "o", "smiles": "N"})
    assert decoder.decode(v1) == Molecule("o", "N")


def test_encoders_write_either_framing() -> None:
    molecule = Molecule("m", "CCO", {}, WHEN)
    assert Encoder(MOLECULE_CODEC).encode(molecule) == MOLECULE_CODEC.encode(molecule)
    framed = frame_of(Encoder(MOLECULE_CODEC, schema_id=5).encode(molecule))
    assert isinstance(framed, RegistryFramed) and framed.ref == 5
    assert MOLECULE_CODEC.decode_body(framed.body, load_schema("molecule")) == molecule


def test_a_foreign_writer_schema_is_incompatible_only_when_it_came_from_a_registry() -> None:
    other = parse_schema(
        '{"type": "record", "name": "Protein", "namespace": "lab", '
        '"fields": [{"name": "seq", "type": "string"}]}'
    )
    with pytest.raises(IncompatibleSchemaError, match=r"lab\.Protein \(schema id 3\) cannot"):
        MOLECULE_CODEC.decode_body(b"\x06MKV", other, source="schema id 3")
    with pytest.raises(CorruptBodyError):
        MOLECULE_CODEC.decode_body(b"\x06MKV", other)


def test_the_error_reasons_are_distinct() -> None:
    errors = (
        EmptyRecordError,
        BadMagicError,
        UnknownSchemaError,
        CorruptBodyError,
        NoRegistryError,
        IncompatibleSchemaError,
    )
    assert len({e.reason for e in errors}) == len(errors)
    assert all(issubclass(e, DecodeError) for e in errors)
