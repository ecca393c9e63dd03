"""Issue 17 item 2: writer schemas from a registry are admitted before any body is decoded
with them, and a body claiming more items than its bytes hold fails at once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from schemas import MOLECULE_CODEC, Molecule
from schemas.admission import MAX_DEPTH, MAX_NODES, MAX_SCHEMA_CHARS, admit, json_depth
from schemas.codec import schema_text
from schemas.errors import CorruptBodyError, RefusedSchemaError


def molecule_with(extra: Any) -> str:
    """The molecule schema with one more field of type ``extra`` (a hostile writer's)."""
    schema = json.loads(schema_text("molecule"))
    schema["fields"].append({"name": "extra", "type": extra})
    return json.dumps(schema)


def long_varint(n: int) -> bytes:
    """``n`` as Avro writes a long: zigzag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes([*out, n])


def hostile_body() -> bytes:
    """20 bytes: a valid molecule, then an array block claiming 2^62 items."""
    body = MOLECULE_CODEC.encode_body(Molecule("m", "C")) + long_varint(2**62)
    return body + b"\x02" * (20 - len(body))


def _record(name: str, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}


def _chain(levels: int, uses: int) -> dict[str, Any]:
    """Fields of types T1…Tn, each Ti a record using T(i-1) ``uses`` times: uses^n nodes."""
    fields: list[tuple[str, Any]] = [("t0", _record("T0", [("a", "int")]))]
    for i in range(1, levels + 1):
        fields.append((f"t{i}", _record(f"T{i}", [(f"a{k}", f"T{i - 1}") for k in range(uses)])))
    return _record("Top", fields)


@pytest.mark.parametrize("name", ["molecule", "molecule.v1", "prediction"])
def test_our_own_schemas_pass_with_a_wide_margin(name: str) -> None:
    text = schema_text(name)
    assert admit(text, "ours")["type"] == "record"
    assert len(text) * 10 < MAX_SCHEMA_CHARS and json_depth(text) * 4 < MAX_DEPTH


REFUSED: list[tuple[str, str]] = [
    (molecule_with({"type": "array", "items": "null"}), "zero_byte_items"),
    (molecule_with({"type": "map", "values": "null"}), "zero_byte_items"),
    (molecule_with({"type": "array", "items": _record("Empty", [])}), "zero_byte_items"),
    (
        molecule_with({"type": "array", "items": {"type": "fixed", "name": "Z", "size": 0}}),
        "zero_byte_items",
    ),
    (
        molecule_with({"type": "array", "items": _record("N", [("a", "null"), ("b", "null")])}),
        "zero_byte_items",
    ),
    (
        molecule_with(
            {
                "type": "array",
                "items": _record("Wide", [("i", "int")] + [(f"n{k}", "null") for k in range(200)]),
            }
        ),
        "costly_items",
    ),
    (json.dumps(_record("R", [("next", ["null", "R"])])), "recursive"),
    (json.dumps(_record("R", [("kids", {"type": "array", "items": "R"})])), "recursive"),
    ("[" * 5000 + "]" * 5000, "too_deep"),
    (json.dumps(_record("R", [("a", "int")])) + " " * MAX_SCHEMA_CHARS, "too_large"),
    (json.dumps(_chain(MAX_NODES.bit_length(), uses=2)), "too_many_nodes"),
    ("{not json", "unparsable"),
    (
        json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}),
        "unparsable",
    ),
    (json.dumps({"type": "array", "items": "int"}), "unparsable"),
    (json.dumps("string"), "unparsable"),
]


@pytest.mark.parametrize(("text", "rule"), REFUSED, ids=[r for _, r in REFUSED])
def test_each_refusal_names_its_rule_and_the_schema(text: str, rule: str) -> None:
    with pytest.raises(RefusedSchemaError) as info:
        admit(text, "schema id 7")
    assert info.value.rule == rule
    assert info.value.reason == "refused_schema"
    assert str(info.value).startswith(f"schema id 7 refused ({rule}): ")


def test_a_deeply_nested_schema_is_refused_not_a_recursion_error() -> None:
    """Nested far past Python's recursion limit: json.loads would raise RecursionError."""
    levels = 800
    opening = '{"type":"record","name":"D%d","fields":[{"name":"a","type":'
    text = "".join(opening % i for i in range(levels)) + '"int"' + "}]}" * levels
    with pytest.raises(RefusedSchemaError, match=r"\(too_deep\)"):
        admit(text, "schema id 8")


def test_types_chained_by_reference_are_measured_expanded() -> None:
    """Shallow in JSON, deep once references are followed."""
    with pytest.raises(RefusedSchemaError, match=r"\(too_deep\)"):
        admit(json.dumps(_chain(MAX_DEPTH + 1, uses=1)), "schema id 9")
    assert admit(json.dumps(_chain(MAX_DEPTH // 2, uses=1)), "schema id 9")


def test_a_block_count_beyond_the_body_fails_in_well_under_a_millisecond() -> None:
    """An int array claiming 2^62 items in a 20-byte body (measured: ~0.05 ms)."""
    writer = admit(molecule_with({"type": "array", "items": "int"}), "schema id 10")
    body = hostile_body()
    assert len(body) == 20
    started = time.perf_counter()
    with pytest.raises(CorruptBodyError):
        MOLECULE_CODEC.decode_body(body, writer, source="schema id 10")
    assert time.perf_counter() - started < 0.05  # generous: machine speed varies
