"""Issue 17 item 9, the worker's decode: random writer schemas (every Avro type, recursive
and zero-byte-item ones among them) are admitted or refused naming a rule; an admitted one
decodes random bytes and a valid encoding with nothing but a DecodeError, and quickly.

The suite runs a short budget; the long one is::

    MOLSTREAM_FUZZ_EXAMPLES=100000 PYTHONPATH=$PWD .venv/bin/python -m pytest -q \\
        tests/unit/test_schema_fuzz.py
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from typing import Any

import fastavro
import fastavro.utils
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas import MOLECULE_CODEC, Codec, DecodeError
from schemas.admission import admit
from schemas.errors import RefusedSchemaError
from tests.fuzzing import examples

EXAMPLES = examples(200)
RULES = {
    "too_large",
    "too_deep",
    "unparsable",
    "recursive",
    "too_many_nodes",
    "zero_byte_items",
    "costly_items",
}
PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=2),  # a hang shows as a deadline, not as a stuck suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Names:
    """Named types of one schema: all defined so far (referencing an open one recurses)."""

    def __init__(self) -> None:
        self.defined: list[str] = []

    def new(self) -> str:
        self.defined.append(f"N{len(self.defined)}")
        return self.defined[-1]


@st.composite
def avro_types(draw: st.DrawFn, names: _Names, depth: int) -> Any:
    kinds = ["primitive", "primitive", "enum", "fixed"]
    kinds += ["ref"] if names.defined else []
    kinds += ["array", "map", "union", "record"] if depth < 4 else []
    kind = draw(st.sampled_from(kinds))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "ref":
        return draw(st.sampled_from(names.defined))
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=3, unique=True))
        return {"type": "enum", "name": names.new(), "symbols": symbols}
    if kind == "fixed":
        return {"type": "fixed", "name": names.new(), "size": draw(st.integers(0, 4))}
    if kind == "array":
        return {"type": "array", "items": draw(avro_types(names, depth + 1))}
    if kind == "map":
        return {"type": "map", "values": draw(avro_types(names, depth + 1))}
    if kind == "union":
        return draw(st.lists(avro_types(names, depth + 1), min_size=1, max_size=3))
    return draw(records(names, depth + 1))


@st.composite
def records(draw: st.DrawFn, names: _Names, depth: int, name: str | None = None) -> Any:
    record: dict[str, Any] = {"type": "record", "name": name or names.new(), "fields": []}
    for i in range(draw(st.integers(0, 4))):
        record["fields"].append({"name": f"f{i}", "type": draw(avro_types(names, depth))})
    return record


@st.composite
def writer_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """Molecule-shaped (so the reader walks every extra field) or any record at all."""
    names = _Names()
    schema: dict[str, Any] = draw(records(names, 0, name=draw(st.sampled_from(["Molecule", "R"]))))
    if schema["name"] == "Molecule":
        schema["namespace"] = "molstream"
        strings = [{"name": "id", "type": "string"}, {"name": "smiles", "type": "string"}]
        schema["fields"] = strings + [{**f, "name": f"x{f['name']}"} for f in schema["fields"]]
    return schema


def _decodes_or_refuses(writer: dict[str, Any], bodies: list[bytes]) -> None:
    """Decoding ends in a record or a DecodeError: with our reader (extra fields skipped)
    and with the writer as reader (every field read)."""
    itself = Codec(dict, writer, text="")
    for body in bodies:
        for codec in (MOLECULE_CODEC, itself):
            with contextlib.suppress(DecodeError):
                codec.decode_body(body, writer, source="schema id 1")


def _valid_body(writer: dict[str, Any]) -> bytes | None:
    try:
        datum = fastavro.utils.generate_one(writer)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, datum)
    except Exception:  # fastavro's generator does not cover every schema (e.g. size 0)
        return None
    return buf.getvalue()[:4096]


@FUZZ
@given(schema=writer_schemas(), body=st.binary(max_size=64))
def test_random_writer_schemas_are_refused_by_rule_or_decode_safely(
    schema: dict[str, Any], body: bytes
) -> None:
    try:
        writer = admit(json.dumps(schema), "schema id 1")
    except RefusedSchemaError as exc:
        event(f"refused: {exc.rule}")  # --hypothesis-show-statistics shows the mix
        assert exc.rule in RULES and f"({exc.rule})" in str(exc)
        return
    event(f"admitted {schema['name']}")
    valid = _valid_body(writer)
    _decodes_or_refuses(writer, [body] if valid is None else [body, valid, valid + body])


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_is_a_schema_or_a_refusal_naming_a_rule(text: str) -> None:
    try:
        admit(text, "schema id 2")
    except RefusedSchemaError as exc:
        assert exc.rule in RULES
