"""Unit tests for schemas.codec: Avro single-object encoding and schema resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    MOLECULE_CODEC,
    PREDICTION_CODEC,
    BadMagicError,
    CorruptBodyError,
    DecodeError,
    EmptyRecordError,
    Molecule,
    Prediction,
    Status,
    UnknownSchemaError,
    load_schema,
)
from schemas.codec import MAGIC, schema_fingerprint

WHEN = datetime(2025, 3, 14, 15, 9, 26, 535_000, tzinfo=UTC)  # millisecond precision


def _prediction(status: Status, error: str | None) -> Prediction:
    return Prediction(
        id="mol-1",
        smiles="CC(=O)Oc1ccccc1C(=O)O",
        status=status,
        outputs={"mol_weight": 180.159, "qed": 0.55, "neg": -1.5e-300} if error is None else {},
        error=error,
        model="reference",
        model_version="1.0.0",
        worker="worker-3",
        attempts=2,
        source_topic="molecules",
        source_partition=7,
        source_offset=2**40 + 1,  # an Avro long, beyond 32 bits
        produced_at=WHEN,
        latency_ms=12.25,
    )


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "molecule",
    [
        Molecule(id="m1", smiles="CCO"),
        Molecule(id="m2", smiles="c1ccccc1", properties={"source": "NCI", "mw": "78.11"}),
        Molecule(id="m3", smiles="CCN", submitted_at=WHEN),
        Molecule(id="m4", smiles="O", properties={"k": ""}, submitted_at=WHEN),
        Molecule(id="mölécule-ß-分子", smiles="[13CH4] ☃ Cé", properties={"名前": "värde 🧪"}),
        Molecule(id="", smiles=""),
    ],
    ids=["plain", "properties", "submitted_at", "both", "unicode", "empty-strings"],
)
def test_molecule_round_trip(molecule: Molecule) -> None:
    assert MOLECULE_CODEC.decode(MOLECULE_CODEC.encode(molecule)) == molecule


def test_molecule_submitted_at_comes_back_as_utc_aware() -> None:
    decoded = MOLECULE_CODEC.decode(MOLECULE_CODEC.encode(Molecule("a", "C", {}, WHEN)))
    assert decoded.submitted_at == WHEN
    assert decoded.submitted_at is not None
    assert decoded.submitted_at.utcoffset() is not None


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("error", [None, "RDKit could not parse the SMILES", ""])
def test_prediction_round_trip(status: Status, error: str | None) -> None:
    prediction = _prediction(status, error)
    decoded = PREDICTION_CODEC.decode(PREDICTION_CODEC.encode(prediction))
    assert decoded == prediction
    assert type(decoded.status) is Status


def test_all_three_statuses_are_in_the_schema() -> None:
    schema = load_schema("prediction")
    status_field = next(f for f in schema["fields"] if f["name"] == "status")
    assert status_field["type"]["symbols"] == [s.value for s in Status]


# -- header ----------------------------------------------------------------------------------


def _crc64_avro(data: bytes) -> int:
    """The Avro specification's 64-bit Rabin fingerprint, written out independently."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize(
    ("codec", "schema_name", "value"),
    [
        (MOLECULE_CODEC, "molecule", Molecule("x", "C")),
        (PREDICTION_CODEC, "prediction", _prediction(Status.OK, None)),
    ],
)
def test_header_is_magic_then_crc64_avro_fingerprint(
    codec: Any, schema_name: str, value: Any
) -> None:
    schema = load_schema(schema_name)
    encoded = codec.encode(value)
    assert encoded[:2] == b"\xc3\x01" == MAGIC
    expected = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
    assert encoded[2:10] == expected == codec.fingerprint == schema_fingerprint(schema)
    # The Avro spec: the fingerprint is stored little-endian.
    canonical = to_parsing_canonical_form(schema).encode()
    assert encoded[2:10] == _crc64_avro(canonical).to_bytes(8, "little")


def test_schema_versions_have_different_fingerprints() -> None:
    assert schema_fingerprint(load_schema("molecule.v1")) != MOLECULE_CODEC.fingerprint
    assert PREDICTION_CODEC.fingerprint != MOLECULE_CODEC.fingerprint


# -- schema evolution ------------------------------------------------------------------------


def test_v1_record_decodes_to_current_molecule() -> None:
    v1 = load_schema("molecule.v1")
    value = MOLECULE_CODEC.encode_with(
        v1, {"id": "old-1", "smiles": "C1CCCCC1", "properties": {"from": "publisher 0.9"}}
    )
    assert value[2:10] == schema_fingerprint(v1)
    assert MOLECULE_CODEC.decode(value) == Molecule(
        id="old-1", smiles="C1CCCCC1", properties={"from": "publisher 0.9"}, submitted_at=None
    )


def test_v1_record_without_properties_gets_the_default() -> None:
    value = MOLECULE_CODEC.encode_with(load_schema("molecule.v1"), {"id": "a", "smiles": "N"})
    assert MOLECULE_CODEC.decode(value) == Molecule(id="a", smiles="N")


# -- typed errors ----------------------------------------------------------------------------


def _good() -> bytes:
    return MOLECULE_CODEC.encode(Molecule("id-1", "CCO", {"a": "b"}, WHEN))


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        (None, EmptyRecordError, "empty"),
        (b"", EmptyRecordError, "empty"),
        (b"\x00\x01" + _good()[2:], BadMagicError, "bad_magic"),
        (b"{}", BadMagicError, "bad_magic"),
        (b"\xc3", BadMagicError, "bad_magic"),
        (b"\xc3\x01", BadMagicError, "bad_magic"),
        (b"\xc3\x01\x00\x01\x02", BadMagicError, "bad_magic"),
        (MAGIC + b"\x00" * 8 + _good()[10:], UnknownSchemaError, "unknown_schema"),
        (MAGIC + PREDICTION_CODEC.fingerprint + _good()[10:], UnknownSchemaError, "unknown_schema"),
        (_good()[:-1], CorruptBodyError, "corrupt_body"),
        (_good()[:11], CorruptBodyError, "corrupt_body"),
        (_good()[:10], CorruptBodyError, "corrupt_body"),
        (_good() + b"\x00", CorruptBodyError, "corrupt_body"),
        (_good() + b"garbage", CorruptBodyError, "corrupt_body"),
        (
            MAGIC + MOLECULE_CODEC.fingerprint + b"\x02\xff\x02C\x00\x00",
            CorruptBodyError,
            "corrupt_body",
        ),
    ],
    ids=[
        "none",
        "empty",
        "wrong-magic",
        "json",
        "one-byte",
        "magic-only",
        "short-header",
        "unknown-fingerprint",
        "other-codecs-fingerprint",
        "truncated-by-one",
        "truncated-body",
        "header-only",
        "trailing-zero",
        "trailing-garbage",
        "invalid-utf8",
    ],
)
def test_decode_errors_are_typed(
    value: bytes | None, error: type[DecodeError], reason: str
) -> None:
    with pytest.raises(error) as info:
        MOLECULE_CODEC.decode(value)
    assert isinstance(info.value, DecodeError)
    assert isinstance(info.value, ValueError)
    assert info.value.reason == reason
    assert str(info.value)  # a message for the dead-letter header


def test_error_tree() -> None:
    for cls in (EmptyRecordError, BadMagicError, UnknownSchemaError, CorruptBodyError):
        assert issubclass(cls, DecodeError)
        assert issubclass(cls, ValueError)
    assert DecodeError.reason == "decode"
    reasons = {c.reason for c in (EmptyRecordError, BadMagicError, UnknownSchemaError)}
    assert len(reasons | {CorruptBodyError.reason, DecodeError.reason}) == 5


def test_prediction_codec_rejects_a_molecule() -> None:
    with pytest.raises(UnknownSchemaError):
        PREDICTION_CODEC.decode(_good())


# -- fuzzing ---------------------------------------------------------------------------------

_V1_HEADER = MAGIC + schema_fingerprint(load_schema("molecule.v1"))
_V2_HEADER = MAGIC + MOLECULE_CODEC.fingerprint


@given(
    st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=48).map(lambda b: _V2_HEADER + b),
        st.binary(max_size=48).map(lambda b: _V1_HEADER + b),
        st.binary(max_size=8).map(lambda b: _good()[: len(_good()) // 2] + b),
    )
)
def test_arbitrary_bytes_decode_or_raise_a_decode_error(value: bytes) -> None:
    try:
        decoded = MOLECULE_CODEC.decode(value)
    except DecodeError as exc:
        assert type(exc) is not DecodeError  # always a specific subclass
        assert exc.reason in {"empty", "bad_magic", "unknown_schema", "corrupt_body"}
    else:
        assert isinstance(decoded, Molecule)
        assert MOLECULE_CODEC.decode(MOLECULE_CODEC.encode(decoded)) == decoded


@given(
    st.builds(
        Molecule,
        id=st.text(max_size=20),
        smiles=st.text(max_size=40),
        properties=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
        submitted_at=st.none()
        | st.datetimes(
            min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
    )
)
def test_any_molecule_round_trips(molecule: Molecule) -> None:
    assert MOLECULE_CODEC.decode(MOLECULE_CODEC.encode(molecule)) == molecule
