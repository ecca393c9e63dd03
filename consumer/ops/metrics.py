"""Prometheus metrics: a :class:`~consumer.hooks.Hooks` implementation beside the core."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from consumer.hooks import Hooks, PartitionLag
from consumer.ops.histogram import BatchHistogram
from consumer.reasons import DeadLetterStage, LossReason
from schemas import Status

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# A backlog's records wait for hours: end-to-end latency keeps its resolution up to a day.
_END_TO_END_BUCKETS_S = (*_LATENCY_BUCKETS_S, 600, 1800, 3600, 7200, 14400, 28800, 86400)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
POOL_STATES = ("deploying", "ready", "busy", "draining")
BROKER_OPERATIONS = ("connect", "fetch", "commit", "produce")
RAY_HEAD_ERROR_KINDS = ("slow", "unreachable")


class PrometheusHooks(Hooks):
    """Every metric of molstream, in its own registry (several processors can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # The process's CPU, memory, open files and the Python runtime, as every exporter has.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Info(
            "molstream_build", "Version of molstream and of the model it serves.", registry=r
        )
        self._version = _version()
        self.build_info.info({"version": self._version, "model": "", "model_version": ""})
        self._flow_metrics(r)
        self._lag_metrics(r)
        self._pool_metrics(r)
        self._histograms(r)
        self._precreate_series()
        self._worker_seconds_seen = 0.0

    def _flow_metrics(self, r: CollectorRegistry) -> None:
        self.consumed_total = Counter(
            "molstream_messages_consumed", "Records fetched from the input topic.", registry=r
        )
        self.predictions_total = Counter(
            "molstream_predictions", "Predictions acknowledged, by status.", ["status"], registry=r
        )
        self.dead_letters_total = Counter(
            "molstream_dead_letters",
            "Records sent to the dead-letter topic.",
            ["stage"],
            registry=r,
        )
        self.offsets_committed_total = Counter(
            "molstream_offsets_committed", "Records moved past by commits.", registry=r
        )

    def _lag_metrics(self, r: CollectorRegistry) -> None:
        self.consumer_lag = Gauge(
            "molstream_consumer_lag",
            "End offset minus committed offset.",
            ["topic", "partition", "group"],
            registry=r,
        )
        self.consumer_lag_seconds = Gauge(
            "molstream_consumer_lag_seconds",
            "Age of the oldest record fetched and not yet done (0: none waits).",
            ["topic", "partition", "group"],
            registry=r,
        )
        self._lag_labels: set[tuple[str, str, str]] = set()

    def _pool_metrics(self, r: CollectorRegistry) -> None:
        self.in_flight_molecules = Gauge(
            "molstream_in_flight_molecules", "Molecules fetched and not yet done.", registry=r
        )
        self.pool_workers = Gauge(
            "molstream_pool_workers", "Workers by state.", ["state"], registry=r
        )
        self.pool_desired_workers = Gauge(
            "molstream_pool_desired_workers", "Workers the pool wants.", registry=r
        )
        self.worker_failures_total = Counter(
            "molstream_worker_failures", "Workers lost, by reason.", ["reason"], registry=r
        )
        self.batch_retries_total = Counter(
            "molstream_batch_retries", "Batches attempted again.", registry=r
        )
        self.broker_errors_total = Counter(
            "molstream_broker_errors",
            "Broker calls that failed and are retried.",
            ["operation"],
            registry=r,
        )
        self.registry_errors_total = Counter(
            "molstream_schema_registry_errors",
            "Schema Registry requests that failed and are retried.",
            ["operation"],
            registry=r,
        )
        self.ray_head_errors_total = Counter(
            "molstream_ray_head_errors",
            "Probes of the Ray head (GCS) that found it slow or unreachable.",
            ["kind"],
            registry=r,
        )

    def _histograms(self, r: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "molstream_batch_size", "Molecules per batch.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.inference_seconds = Histogram(
            "molstream_inference_seconds",
            "Worker time per batch.",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.end_to_end_seconds = BatchHistogram(
            "molstream_end_to_end_seconds",
            "Record timestamp to prediction acknowledged.",
            buckets=_END_TO_END_BUCKETS_S,
            registry=r,
        )
        self.worker_seconds_total = Counter(
            "molstream_worker_seconds", "Time workers existed, deploying included.", registry=r
        )

    def _precreate_series(self) -> None:
        for state in POOL_STATES:
            self.pool_workers.labels(state)
        # Series exist from the start, so dashboards show 0 rather than "no data".
        for status in Status:
            self.predictions_total.labels(status.value)
        for stage in DeadLetterStage:
            self.dead_letters_total.labels(stage)
        for reason in LossReason:
            self.worker_failures_total.labels(reason)
        for operation in BROKER_OPERATIONS:
            self.broker_errors_total.labels(operation)
        for kind in RAY_HEAD_ERROR_KINDS:
            self.ray_head_errors_total.labels(kind)

    def consumed(self, count: int) -> None:
        self.consumed_total.inc(count)

    def predicted(self, statuses: Sequence[Status], end_to_end_s: Sequence[float | None]) -> None:
        for status, count in collections.Counter(statuses).items():
            self.predictions_total.labels(status.value).inc(count)
        self.end_to_end_seconds.observe_many(max(0.0, s) for s in end_to_end_s if s is not None)

    def dead_letter(self, stage: DeadLetterStage) -> None:
        self.dead_letters_total.labels(stage).inc()

    def committed(self, count: int) -> None:
        self.offsets_committed_total.inc(count)

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(inference_s)

    def retry(self) -> None:
        self.batch_retries_total.inc()

    def worker_failure(self, reason: LossReason) -> None:
        self.worker_failures_total.labels(reason).inc()

    def in_flight(self, count: int) -> None:
        self.in_flight_molecules.set(count)

    def broker_error(self, operation: str) -> None:
        self.broker_errors_total.labels(operation).inc()

    def registry_error(self, operation: str) -> None:
        self.registry_errors_total.labels(operation).inc()

    def ray_head_error(self, kind: str) -> None:
        self.ray_head_errors_total.labels(kind).inc()

    def pool_state(self, by_state: dict[str, int], desired: int, worker_seconds: float) -> None:
        for state in POOL_STATES:
            self.pool_workers.labels(state).set(by_state.get(state, 0))
        self.pool_desired_workers.set(desired)
        # The pool reports a running total; a Counter only goes up by deltas.
        delta = worker_seconds - self._worker_seconds_seen
        if delta > 0:
            self.worker_seconds_total.inc(delta)
            self._worker_seconds_seen = worker_seconds

    def lag(self, group: str, partitions: Mapping[tuple[str, int], PartitionLag]) -> None:
        held = {(topic, str(partition), group) for topic, partition in partitions}
        # A revoked partition's series go: its new owner reports it, two series would double it.
        for labels in self._lag_labels - held:
            self.consumer_lag.remove(*labels)
            self.consumer_lag_seconds.remove(*labels)
        self._lag_labels = held
        for (topic, partition), lag in partitions.items():
            self.consumer_lag.labels(topic, str(partition), group).set(lag.records)
            self.consumer_lag_seconds.labels(topic, str(partition), group).set(lag.oldest_age_s)

    def worker_ready(self, model: str, model_version: str) -> None:
        self.build_info.info(
            {"version": self._version, "model": model, "model_version": model_version}
        )


def _version() -> str:
    try:
        return version("molstream")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
