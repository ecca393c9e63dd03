"""Kafka group timing: defaults that fit together, contradictions refused naming both options."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from consumer.settings import ConsumerSettings


def _settings(**values: object) -> ConsumerSettings:
    return ConsumerSettings(**values)  # type: ignore[arg-type]


def test_the_defaults_fit_together() -> None:
    s = _settings()
    assert s.shutdown_timeout_s < s.rebalance_timeout_s
    assert s.shutdown_timeout_s < s.max_poll_interval_s
    assert s.heartbeat_interval_s * 3 <= s.session_timeout_s
    assert s.group_instance_id is None
    assert s.ray_timeout_s == 30


@pytest.mark.parametrize(
    ("values", "first", "second"),
    [
        (
            {"shutdown_timeout_s": 60, "rebalance_timeout_s": 60},
            "--shutdown-timeout-s",
            "--rebalance-timeout-s",
        ),
        (
            {"shutdown_timeout_s": 90, "rebalance_timeout_s": 60},
            "--shutdown-timeout-s",
            "--rebalance-timeout-s",
        ),
        (
            {"heartbeat_interval_s": 4, "session_timeout_s": 10},
            "--heartbeat-interval-s",
            "--session-timeout-s",
        ),
        (
            {"shutdown_timeout_s": 20, "max_poll_interval_s": 20, "rebalance_timeout_s": 60},
            "--shutdown-timeout-s",
            "--max-poll-interval-s",
        ),
    ],
    ids=["drain-equals-rebalance", "drain-over-rebalance", "heartbeat", "drain-over-poll"],
)
def test_contradictions_are_refused_naming_both_options(
    values: dict[str, float], first: str, second: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _settings(**values)
    message = str(info.value)
    assert re.search(f"{first} .* {second}", message), message


def test_a_heartbeat_of_exactly_a_third_is_accepted() -> None:
    assert _settings(heartbeat_interval_s=2, session_timeout_s=6).heartbeat_interval_s == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_timeout_s", 0),
        ("heartbeat_interval_s", 0),
        ("max_poll_interval_s", 1),  # the paused consumer polls every second
        ("rebalance_timeout_s", 0),
        ("ray_timeout_s", 0),
        ("ray_timeout_s", 60),  # Ray aborts the process itself at about 60 s
    ],
)
def test_out_of_range_group_timing_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        _settings(**{field: value})


@pytest.mark.parametrize(
    ("values", "fetch_wait_ms"),
    [
        ({}, 10),  # a fifth of the batch wait
        ({"batch_wait_ms": 5000}, 500),  # never longer than aiokafka's default
        ({"batch_wait_ms": 0}, 5),  # an idle consumer must not spin on empty fetches
        ({"batch_wait_ms": 80, "fetch_max_wait_ms": 20}, 20),
    ],
)
def test_the_fetch_wait_follows_the_batch_wait(
    values: dict[str, float], fetch_wait_ms: int
) -> None:
    assert _settings(**values).fetch_wait_ms == fetch_wait_ms


def test_a_fetch_wait_longer_than_the_batch_wait_is_refused() -> None:
    with pytest.raises(ValidationError, match="--fetch-max-wait-ms 100 exceeds --batch-wait-ms 50"):
        _settings(fetch_max_wait_ms=100)
