"""Dependencies point down: schemas ← consumer, producer ← bench ← tests (read with ``ast``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def violations(package: str, forbidden: tuple[str, ...], skip: str | None = None) -> list[str]:
    """``file: module`` for each import of a forbidden package from ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if skip and relative.is_relative_to(skip):
            continue
        for module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{relative}: {module}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden", "skip"),
    [
        ("consumer", ("bench", "tests", "producer", "consumer.dev"), "consumer/dev"),
        ("consumer/dev", ("bench", "tests", "producer"), None),
        ("producer", ("consumer", "bench", "tests"), None),
        ("schemas", ("consumer", "producer", "bench", "tests"), None),
        ("bench", ("tests",), None),
    ],
)
def test_imports_point_down(package: str, forbidden: tuple[str, ...], skip: str | None) -> None:
    assert violations(package, forbidden, skip) == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from bench.simulation import x\n    import tests.plugins\n")
    assert list(imported_modules(source)) == ["bench.simulation", "tests.plugins"]


BLOCK_LINES = 6
_THIN = re.compile(r"^[\s()\[\]{},:]*$")


def _code_lines(path: Path) -> list[str]:
    """The lines that carry code, white space folded: no blanks, comments, imports or lone
    punctuation (what a copied block is made of)."""
    kept = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = " ".join(raw.split())
        if _THIN.match(line) or line.startswith(("#", "import ", "from ")):
            continue
        kept.append(line)
    return kept


def _blocks(folder: Path) -> dict[tuple[str, ...], Path]:
    blocks: dict[tuple[str, ...], Path] = {}
    for path in sorted(folder.rglob("*.py")):
        lines = _code_lines(path)
        for i in range(len(lines) - BLOCK_LINES + 1):
            blocks.setdefault(tuple(lines[i : i + BLOCK_LINES]), path)
    return blocks


def test_bench_and_tests_share_no_block_of_six_lines() -> None:
    bench, tests = _blocks(ROOT / "bench"), _blocks(ROOT / "tests")
    shared = sorted(
        f"{bench[block].relative_to(ROOT)} ~ {tests[block].relative_to(ROOT)}: {block[0]}"
        for block in bench.keys() & tests.keys()
    )
    assert shared == []


def test_the_block_check_finds_a_copied_block_whatever_its_spacing(tmp_path: Path) -> None:
    body = [f"value_{i} = compute({i})" for i in range(BLOCK_LINES)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.py").write_text("\n".join(body) + "\n")
    spaced = "import os\n" + "\n\n".join(f"  {line}   # why" for line in body) + "\n)\n"
    (tmp_path / "b" / "y.py").write_text(spaced.replace("  # why", ""))
    assert _blocks(tmp_path / "a").keys() & _blocks(tmp_path / "b").keys()
