"""Unit tests for consumer.ops.metrics.PrometheusHooks (no broker, no Ray, no HTTP)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumer.hooks import PartitionLag
from consumer.ops.metrics import PrometheusHooks


def _samples(hooks: PrometheusHooks) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(hooks.registry).decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_lag_series_carry_the_group_and_go_with_a_revoked_partition() -> None:
    hooks = PrometheusHooks()
    hooks.lag("g", {("t", 0): PartitionLag(5, 3.5), ("t", 1): PartitionLag(0, 0.0)})
    samples = _samples(hooks)
    assert sorted(samples["molstream_consumer_lag"], key=str) == [
        ({"topic": "t", "partition": "0", "group": "g"}, 5.0),
        ({"topic": "t", "partition": "1", "group": "g"}, 0.0),
    ]
    assert ({"topic": "t", "partition": "0", "group": "g"}, 3.5) in samples[
        "molstream_consumer_lag_seconds"
    ]
    hooks.lag("g", {("t", 1): PartitionLag(2, 1.0)})  # partition 0 was revoked
    samples = _samples(hooks)
    assert samples["molstream_consumer_lag"] == [
        ({"topic": "t", "partition": "1", "group": "g"}, 2.0)
    ]
    assert samples["molstream_consumer_lag_seconds"] == [
        ({"topic": "t", "partition": "1", "group": "g"}, 1.0)
    ]
    hooks.lag("g", {})  # every partition revoked
    assert "molstream_consumer_lag" not in _samples(hooks)


def test_build_info_names_the_model_once_a_worker_loaded_it() -> None:
    hooks = PrometheusHooks()
    ((labels, value),) = _samples(hooks)["molstream_build_info"]
    assert value == 1 and labels["version"] and labels["model"] == ""
    hooks.worker_ready("reference", "2.1")
    ((labels, _),) = _samples(hooks)["molstream_build_info"]
    assert (labels["model"], labels["model_version"]) == ("reference", "2.1")


def test_process_collectors_and_hour_long_latency_buckets() -> None:
    samples = _samples(PrometheusHooks())
    assert "process_cpu_seconds_total" in samples
    assert "python_info" in samples
    buckets = [float(labels["le"]) for labels, _ in samples["molstream_end_to_end_seconds_bucket"]]
    assert max(b for b in buckets if b != float("inf")) >= 4 * 3600
