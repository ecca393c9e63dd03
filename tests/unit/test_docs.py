"""The README documents every option of ``molstream consume`` with its real default."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.settings import ConsumerSettings
from schemas.cli_options import shown_default

README = (Path(__file__).parents[2] / "README.md").read_text()


def _row(env: str) -> str:
    rows = [line for line in README.splitlines() if f"`{env}`" in line and line.startswith("|")]
    assert len(rows) == 1, f"README has no single options row for {env}"
    return rows[0]


@pytest.mark.parametrize("name", list(ConsumerSettings.model_fields))
def test_every_option_is_documented_with_its_default(name: str) -> None:
    field = ConsumerSettings.model_fields[name]
    row = _row(f"MOLSTREAM_{name.upper()}")
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("cli") is False:
        assert row.startswith("| (environment only) |"), name
    else:
        assert f"`--{name.replace('_', '-')}`" in row
    shown = shown_default(field)
    assert f"| {shown} |" in row, f"{name}: README default differs from {shown}"


def test_the_readme_has_exactly_two_setup_commands() -> None:
    block = README.split("## Set-up: two commands", 1)[1].split("```")[1]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
