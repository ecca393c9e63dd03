"""Dependencies point down: schemas ← consumer, producer ← tests ← bench (which takes only the
tests' harness), and inside consumer/ from folder to folder (read with ``ast``)."""

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
        ("tests", ("bench",), None),
    ],
)
def test_imports_point_down(package: str, forbidden: tuple[str, ...], skip: str | None) -> None:
    assert violations(package, forbidden, skip) == []


def test_the_benchmarks_take_from_the_tests_only_their_harness() -> None:
    found = violations("bench", ("tests",))
    assert [v for v in found if not v.endswith(": tests.harness")] == []


def test_no_analysis_of_a_benchmark_imports_its_run() -> None:
    # run → analyse → render: what a run measured is analysed without running anything.
    found = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / "bench").glob("*/analyse.py"))
        for module in imported_modules(path)
        if module == f"bench.{path.parent.name}.run"
    ]
    assert found == []


# consumer/ from the bottom up: a folder or top-level module imports only what is below it.
CONSUMER_LAYERS = (
    "reasons",
    "errors",
    "models",
    "lifecycle",
    "hooks",
    "ray_settings",
    "ops_settings",
    "input_settings",
    "settings",
    "state",  # bookkeeping and the worker message contract
    "ops",  # metrics, logs, tracing, the status endpoint
    "pool",  # the replicas, the Ray actor and its per-batch work
    "sink",  # output, outbox
    "retry_plan",
    "traced",
    "dispatch",
    "intake",  # fetch, screen, batch, rebalance, commits
    "scaling",
    "pipeline",
    "processor",
    "runner",
    "cli",
    "dev",
)
MAX_MODULES_PER_FOLDER = 15


def unit_of(module: str) -> str | None:
    """The folder or top-level module of consumer/ that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if parts[0] == "consumer" and len(parts) > 1 else None


def consumer_imports(path: Path) -> Iterator[str]:
    """The modules of consumer/ a file imports, ``from consumer import traced`` included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "consumer":
            yield from (f"consumer.{alias.name}" for alias in node.names)
    yield from imported_modules(path)


def consumer_units() -> dict[str, list[Path]]:
    units: dict[str, list[Path]] = {}
    for path in sorted((ROOT / "consumer").rglob("*.py")):
        parts = path.relative_to(ROOT / "consumer").with_suffix("").parts
        if parts != ("__init__",):
            units.setdefault(parts[0], []).append(path)
    return units


def test_every_part_of_consumer_has_its_layer() -> None:
    assert sorted(consumer_units()) == sorted(CONSUMER_LAYERS)


def test_the_parts_of_consumer_import_only_what_is_below_them() -> None:
    rank = {unit: i for i, unit in enumerate(CONSUMER_LAYERS)}
    upward = []
    for unit, paths in consumer_units().items():
        for path in paths:
            for module in consumer_imports(path):
                target = unit_of(module)
                if target is not None and target != unit and rank[target] > rank[unit]:
                    upward.append(f"{path.relative_to(ROOT)}: {module}")
    assert upward == []


def test_no_folder_of_consumer_holds_more_than_15_modules() -> None:
    folders = [ROOT / "consumer", *(p.parent for p in (ROOT / "consumer").rglob("__init__.py"))]
    crowded = {
        str(folder.relative_to(ROOT)): n
        for folder in folders
        if (n := len([p for p in folder.glob("*.py") if p.name != "__init__.py"]))
        > MAX_MODULES_PER_FOLDER
    }
    assert crowded == {}


def test_the_sub_packages_of_consumer_import_nothing_on_their_own() -> None:
    # A Ray worker imports consumer.pool.model_actor: its packages must cost nothing.
    inits = (ROOT / "consumer").glob("*/__init__.py")
    loaded = [
        str(p.relative_to(ROOT))
        for p in inits
        if p.parent.name not in ("models", "dev") and p.read_text(encoding="utf-8").strip()
    ]
    assert loaded == []


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
