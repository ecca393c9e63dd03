"""Unit tests for the worker-reuse simulation: consumer.dev.simulation and its command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from consumer.dev.simulate_cli import (
    CSV_NAME,
    JSON_NAME,
    PNG_NAME,
    parse_inputs,
    parse_max_starts,
    run,
    simulate_command,
)
from consumer.dev.simulation import COLUMNS, RunResult, completed_by, simulate_grid, simulate_run


def test_worked_example_starting_on_arrival_doubles_batches_by_t4() -> None:
    # The article's diagram: no setup and no worker creation, 5 instances at t=1 and 5 at t=3.
    arrivals = [1.0] * 5 + [3.0] * 5
    kwargs = {"setup_tu": 0.0, "worker_create_tu": 0.0, "inference_tu": 1.0}
    assert completed_by(arrivals, 4.0, wait_for_all=False, **kwargs) == 20
    assert completed_by(arrivals, 4.0, wait_for_all=True, **kwargs) == 10


@pytest.mark.parametrize(
    ("provision_times", "reuse", "expected"),
    [
        # Node 0: ready 3, worker 4, inputs 4->5 and 5->6. Node 1 (p=10) ran none and was
        # provisioned after the last start (5), so it costs nothing.
        ([0.0, 10.0], True, RunResult(time=6.0, cost=6.0)),
        # Node 0: ready 3, tasks 3->5 and 5->7; node 1 again unbilled (10 > last start 5).
        ([0.0, 10.0], False, RunResult(time=7.0, cost=7.0)),
        # Order of the draws does not matter.
        ([10.0, 0.0], True, RunResult(time=6.0, cost=6.0)),
        # Node 0 runs 4->5, 5->6 before node 1 is ready at 5.5; node 1 is billed 1.5->5.
        ([0.0, 1.5], True, RunResult(time=6.0, cost=6.0 + 3.5)),
        # Node 0 runs 3->5, node 1 (ready 4.5) runs 4.5->6.5: billed 5 + 5.
        ([0.0, 1.5], False, RunResult(time=6.5, cost=10.0)),
        # Node 0 runs all three (4->7) before node 1 is ready at 6.5; node 1 is billed 2.5->6,
        # node 2 (p=20) nothing.
        ([0.0, 2.5, 20.0], True, RunResult(time=7.0, cost=7.0 + 3.5)),
        # Node 0 runs 3->5->7, node 1 takes the third input 5.5->7.5: billed 7 + 5.
        ([0.0, 2.5, 20.0], False, RunResult(time=7.5, cost=12.0)),
    ],
)
def test_simulate_run_hand_computed(
    provision_times: list[float], reuse: bool, expected: RunResult
) -> None:
    assert simulate_run(provision_times, reuse=reuse) == expected


@pytest.mark.parametrize("p", [0.0, 0.25, 7.0, 812.5])
def test_single_input_reuse_and_no_reuse_take_as_long_and_cost_the_same(p: float) -> None:
    # Reuse is 3 + 1 + 1 and no reuse 3 + 2; the lone node is billed for exactly that span.
    assert simulate_run([p], reuse=True) == RunResult(time=p + 5.0, cost=5.0)
    assert simulate_run([p], reuse=False) == RunResult(time=p + 5.0, cost=5.0)


def test_single_input_grid_shows_no_improvement() -> None:
    for row in simulate_grid([1], [0.0, 10.0, 1000.0], runs=50, seed=3):
        assert row.time_improvement == pytest.approx(0.0, abs=1e-12)
        assert row.cost_improvement == pytest.approx(0.0, abs=1e-12)


def test_simultaneous_provisioning_shows_no_improvement() -> None:
    # With S = 0 every node takes exactly one input, so both modes finish at 5 and bill 5 each.
    for row in simulate_grid([1, 10, 100], [0.0], runs=5, seed=1):
        assert (row.time_reuse, row.time_no_reuse) == (5.0, 5.0)
        assert row.cost_reuse == row.cost_no_reuse == 5.0 * row.inputs
        assert row.time_improvement == row.cost_improvement == 0.0


def test_improvement_grows_with_max_start_for_100_inputs() -> None:
    rows = simulate_grid([100], [1.0, 10.0, 100.0, 1000.0], runs=200, seed=0)
    time_gain = [row.time_improvement for row in rows]
    cost_gain = [row.cost_improvement for row in rows]
    assert time_gain == sorted(set(time_gain))
    assert cost_gain == sorted(set(cost_gain))


def test_same_seed_gives_same_results_and_another_seed_differs() -> None:
    first = simulate_grid([10, 100], [10.0, 100.0], runs=20, seed=7)
    assert simulate_grid([10, 100], [10.0, 100.0], runs=20, seed=7) == first
    assert simulate_grid([10, 100], [10.0, 100.0], runs=20, seed=8) != first


@given(st.lists(st.floats(0.0, 1000.0, allow_nan=False), min_size=1, max_size=50))
def test_reuse_never_finishes_later(provision_times: list[float]) -> None:
    reuse = simulate_run(provision_times, reuse=True)
    no_reuse = simulate_run(provision_times, reuse=False)
    # Equal makespans are summed along different paths (p+3+1+1 against p+3+2), so allow
    # for float rounding.
    assert reuse.time <= no_reuse.time + 1e-9


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        simulate_run([], reuse=True)
    with pytest.raises(ValueError, match="input counts"):
        simulate_grid([0], [1.0], runs=1, seed=0)
    with pytest.raises(ValueError, match="max starts"):
        simulate_grid([1], [-1.0], runs=1, seed=0)
    with pytest.raises(ValueError, match="runs"):
        simulate_grid([1], [1.0], runs=0, seed=0)


def test_run_writes_csv_png_and_json(tmp_path: Path) -> None:
    rows = run(tmp_path, [1, 10], [0.0, 10.0], runs=5, seed=0)

    with (tmp_path / CSV_NAME).open(newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == list(COLUMNS)
        assert len(list(reader)) == len(rows) == 4
    png = tmp_path / PNG_NAME
    assert png.is_file()
    assert png.stat().st_size > 0
    summary = json.loads((tmp_path / JSON_NAME).read_text())
    assert [list(item) for item in summary] == [list(COLUMNS)] * 4


def test_parsers_sort_and_deduplicate() -> None:
    assert parse_inputs(" 100,1,10,1 ") == [1, 10, 100]
    assert parse_max_starts("10,0,2.5") == [0.0, 2.5, 10.0]


@pytest.mark.parametrize("text", ["0", "-1", "x", "1.5", "1,,2", ""])
def test_parse_inputs_rejects_bad_values(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_inputs(text)


@pytest.mark.parametrize("text", ["-1", "abc", "inf", "nan", "1,"])
def test_parse_max_starts_rejects_bad_values(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_max_starts(text)


def test_command_reports_a_bad_value_as_a_usage_error() -> None:
    app = typer.Typer()
    app.command()(simulate_command)
    result = CliRunner().invoke(app, ["--inputs", "1,-5"])
    assert result.exit_code == 2
    assert "--inputs" in result.output
