"""The code stays in small pieces: no module of consumer/, schemas/ or bench/ over 300 lines,
no class over 200, no function over 50 (read with ``ast``; the failure says which one is
over)."""

from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
LIMITS = {"module": 300, "class": 200, "function": 50}
LIMITED = ("consumer", "schemas", "bench")
"""The trees the limits apply to (producer/ and tests/ are not held to them yet)."""


def _oversized(root: Path) -> list[str]:
    over = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root.parent)
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > LIMITS["module"]:
            over.append(f"{name}: module of {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                kind = "class"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                kind = "function"
            else:
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > LIMITS[kind]:
                over.append(f"{name}:{node.lineno}: {kind} {node.name} of {length} lines")
    return over


@pytest.mark.parametrize("tree", LIMITED)
def test_no_module_class_or_function_is_over_its_limit(tree: str) -> None:
    assert _oversized(ROOT / tree) == []


def test_the_size_check_names_what_is_over(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMITS["function"]))
    (tmp_path / "a.py").write_text(f"def long() -> None:\n{body}")
    assert [hit.split(": ", 1)[1] for hit in _oversized(tmp_path)] == [
        f"function long of {LIMITS['function'] + 1} lines"
    ]


PACKING = ("fmt: skip", "fmt: off")
"""Formatter pragmas that hand-pack code (split along the seam instead)."""


def _packed(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for token in tokens:
            if token.type == tokenize.COMMENT and any(p in token.string for p in PACKING):
                found.append(f"{path.relative_to(root)}:{token.start[0]}")
    return found


def test_no_code_is_packed_by_hand() -> None:
    packages = ("consumer", "producer", "schemas", "bench", "tests")
    assert [f"{p}/{hit}" for p in packages for hit in _packed(ROOT / p)] == []


def test_the_packing_check_reads_comments_only(tmp_path: Path) -> None:
    pragma = "# " + PACKING[0]
    (tmp_path / "a.py").write_text(f"x = (1,  2)  {pragma}\ny = {pragma!r}\n")
    assert _packed(tmp_path) == ["a.py:1"]


RESULTS = ROOT / "bench" / "results"
MAX_RESULT_BYTES = 32_000
MAX_SERIES = 100
"""A committed result is a summary: a longer list or mapping is a series of raw samples."""


def _series(value: dict[str, Any] | list[Any], where: str = "") -> list[str]:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    found = [f"{where} ({len(value)})"] if len(value) > MAX_SERIES else []
    for key, item in items:
        if isinstance(item, dict | list):
            found += _series(item, f"{where}/{key}")
    return found


def test_committed_results_are_summaries() -> None:
    big = {
        str(path.relative_to(RESULTS)): [f"{path.stat().st_size} bytes"]
        if path.stat().st_size > MAX_RESULT_BYTES
        else _series(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(RESULTS.rglob("*.json"))
        if not path.name.endswith(".raw.json")
    }
    assert {name: found for name, found in big.items() if found} == {}


def test_the_series_check_finds_a_long_one() -> None:
    assert _series({"a": {"samples": list(range(MAX_SERIES + 1))}}) == [
        f"/a/samples ({MAX_SERIES + 1})"
    ]
