"""Dependencies point down: schemas ← consumer, producer ← bench ← tests (read with ``ast``)."""

from __future__ import annotations

import ast
import shutil
import subprocess
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


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="the duplicates tool is not here")
def test_bench_and_tests_share_no_block_of_six_lines() -> None:
    listing = subprocess.run(
        ["duplicates", "--most", "200", "--seconds", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "incomplete:" not in listing, listing
    shared = [
        row
        for row in listing.splitlines()
        if row.startswith("D")
        and {side.split("/")[0] for side in row.split()[1:4:2]} == {"bench", "tests"}
    ]
    assert shared == []
