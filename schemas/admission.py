"""Admission of writer schemas from outside (a Schema Registry) before any body is decoded
with them. Pure: text in, a parsed schema or a :class:`RefusedSchemaError` out.

Anyone who may register a schema can make fastavro's reader hang, recurse without bound or
walk an exponential tree on a tiny body. A schema is refused, naming the rule, when:

- ``too_large``: its text is over :data:`MAX_SCHEMA_CHARS`;
- ``too_deep``: its JSON, or its types once named references are followed, nest deeper
  than :data:`MAX_DEPTH`;
- ``unparsable``: json or fastavro cannot parse it (any exception), or it is no record;
- ``recursive``: a named type contains itself (its data may nest as deep as a body says);
- ``too_many_nodes``: its types, with every named reference expanded, have more than
  :data:`MAX_NODES` nodes (references to a reused type multiply);
- ``zero_byte_items``: an array's or map's items can take zero bytes (null, an empty
  record, a zero-size fixed…): a block count of 2^62 then loops without reading a byte;
- ``costly_items``: an array's or map's items cost more than :data:`MAX_NODES_PER_ITEM_BYTE`
  nodes of decoding per byte they must take.

With these refused, each array or map item takes at least one byte, so a body claiming more
items than its bytes can hold ends at its last byte, and decoding work is bounded by the
body's size times a constant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import fastavro

from schemas.errors import RefusedSchemaError

MAX_SCHEMA_CHARS = 65_536
"""Longest schema text admitted. Our molecule schema is 662 characters, the prediction
schema 1,727: 64 KiB leaves room for documented schemas of hundreds of fields while bounding
what is parsed for each new schema id."""

MAX_DEPTH = 32
"""Deepest nesting admitted, in JSON brackets and in types. Our molecule schema is 5 deep in
JSON and 3 in types; fastavro's reader and parser recurse a few Python frames per level, so
32 stays far below Python's recursion limit (1000)."""

MAX_NODES = 4_096
"""Most type nodes admitted with named references expanded. Our molecule schema has 8; the
bound stops a chain of types each using the next twice (2^n nodes from n definitions)."""

MAX_NODES_PER_ITEM_BYTE = 64
"""Most type nodes one byte of an array or map item may make the reader walk. Our molecule
schema's map values (a string: 1 node, at least 1 byte) are at 1; records of many nullable
fields stay under it, a record of one int and thousands of nulls does not."""

_PRIMITIVE_SIZE = {
    "null": 0,
    "boolean": 1,
    "int": 1,
    "long": 1,
    "float": 4,
    "double": 8,
    "bytes": 1,
    "string": 1,
}
"""Fewest bytes each primitive takes in Avro binary (a length or varint takes one)."""


@dataclass(frozen=True, slots=True)
class _Shape:
    """What decoding a type costs at least and at most: bytes it must read, nodes, depth."""

    min_bytes: int
    nodes: int
    depth: int


def admit(text: str, source: str) -> dict[str, Any]:
    """The parsed record schema ``text`` if it passes every rule; raises
    :class:`RefusedSchemaError` naming the rule and ``source`` (e.g. ``schema id 7``)."""
    if len(text) > MAX_SCHEMA_CHARS:
        raise RefusedSchemaError(source, "too_large", f"{len(text)} > {MAX_SCHEMA_CHARS} chars")
    depth = json_depth(text)
    if depth > MAX_DEPTH:
        raise RefusedSchemaError(source, "too_deep", f"JSON nested {depth} > {MAX_DEPTH} deep")
    try:
        parsed = fastavro.parse_schema(json.loads(text))
    except Exception as exc:  # json and fastavro raise many types on bad schemas
        raise RefusedSchemaError(source, "unparsable", f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise RefusedSchemaError(source, "unparsable", "not an Avro record schema")
    _Walk(source, parsed.get("__named_schemas", {})).shape(parsed)
    return parsed


def json_depth(text: str) -> int:
    """The deepest bracket nesting of JSON ``text`` (brackets inside strings ignored),
    measured without recursion so that any text can be measured."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _Walk:
    """One walk of a parsed schema's types, named references followed (memoized)."""

    def __init__(self, source: str, named: dict[str, Any]) -> None:
        self._source = source
        self._named = named
        self._done: dict[str, _Shape] = {}
        self._open: list[str] = []  # named types being walked, outermost first

    def _refuse(self, rule: str, detail: str) -> RefusedSchemaError:
        return RefusedSchemaError(self._source, rule, detail)

    def shape(self, schema: Any) -> _Shape:
        if len(self._open) > MAX_DEPTH:
            raise self._refuse("too_deep", f"types nested > {MAX_DEPTH} deep")
        if isinstance(schema, list):
            branches = [self.shape(branch) for branch in schema]
            # A union writes its branch index first: one byte at least.
            return self._node(
                1 + min((b.min_bytes for b in branches), default=0),
                branches,
            )
        if isinstance(schema, str):
            if schema in _PRIMITIVE_SIZE:
                return _Shape(_PRIMITIVE_SIZE[schema], 1, 1)
            return self._named_shape(schema, self._named.get(schema))
        if isinstance(schema, dict):
            name = schema.get("name")
            if schema.get("type") in ("record", "error", "enum", "fixed") and name:
                return self._named_shape(str(name), schema)
            return self._anonymous(schema)
        raise self._refuse("unparsable", f"unexpected type {schema!r}")

    def _named_shape(self, name: str, definition: Any) -> _Shape:
        known = self._done.get(name)
        if known is not None:
            return known
        if name in self._open:
            raise self._refuse("recursive", f"{name} contains itself")
        if not isinstance(definition, dict):
            raise self._refuse("unparsable", f"unknown type {name}")
        self._open.append(name)
        try:
            shape = self._definition(name, definition)
        finally:
            self._open.pop()
        self._done[name] = shape
        return shape

    def _definition(self, name: str, schema: dict[str, Any]) -> _Shape:
        kind = schema["type"]
        if kind == "enum":
            return _Shape(1, 1, 1)
        if kind == "fixed":
            return _Shape(int(schema.get("size", 0)), 1, 1)
        fields = [self.shape(f["type"]) for f in schema.get("fields", [])]
        return self._node(sum(f.min_bytes for f in fields), fields)

    def _anonymous(self, schema: dict[str, Any]) -> _Shape:
        kind = schema.get("type")
        if kind in ("array", "map"):
            items = self.shape(schema["items" if kind == "array" else "values"])
            if items.min_bytes == 0:
                raise self._refuse("zero_byte_items", f"{kind} items that can take 0 bytes")
            if items.nodes > MAX_NODES_PER_ITEM_BYTE * items.min_bytes:
                raise self._refuse(
                    "costly_items",
                    f"{kind} items that walk {items.nodes} nodes for {items.min_bytes} "
                    f"bytes (> {MAX_NODES_PER_ITEM_BYTE} per byte)",
                )
            return self._node(1, [items])  # a count of zero ends it
        # A primitive written as {"type": "int", "logicalType": ...}, or a nested definition.
        return self.shape(kind)

    def _node(self, min_bytes: int, children: list[_Shape]) -> _Shape:
        nodes = 1 + sum(c.nodes for c in children)
        if nodes > MAX_NODES:
            raise self._refuse("too_many_nodes", f"> {MAX_NODES} type nodes once expanded")
        depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_DEPTH:
            raise self._refuse("too_deep", f"types nested {depth} > {MAX_DEPTH} deep")
        return _Shape(min_bytes, nodes, depth)
