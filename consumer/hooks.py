"""Hooks: what the core tells the outside world (metrics, tests), kept out of the core logic.

The processor and pool call these at each event; :mod:`consumer.ops.metrics` implements them for
Prometheus, the way dramatiq's Prometheus middleware sits beside its worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consumer.reasons import DeadLetterStage, LossReason
from schemas import Status


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """How far one partition is behind: in records and in time."""

    records: int
    """End offset minus committed offset."""
    oldest_age_s: float
    """Age of the oldest record fetched and not yet done, from its Kafka timestamp; 0 if none."""


class Hooks:
    """No-op base: subclass and override what you need."""

    def consumed(self, count: int) -> None:
        """Records fetched from the input topic."""

    def predicted(self, statuses: Sequence[Status], end_to_end_s: Sequence[float | None]) -> None:
        """A batch's predictions were acknowledged, each with its time from record
        timestamp to ack (None without a timestamp). Calls :meth:`prediction` for each:
        override this one to take a batch at once."""
        for status, seconds in zip(statuses, end_to_end_s, strict=True):
            self.prediction(status, seconds)

    def prediction(self, status: Status, end_to_end_s: float | None) -> None:
        """A prediction was acknowledged; ``end_to_end_s`` is record timestamp to ack."""

    def dead_letter(self, stage: DeadLetterStage) -> None:
        """A record went to the dead-letter topic; ``stage`` is where it failed."""

    def committed(self, count: int) -> None:
        """Offsets were committed (``count`` records moved past)."""

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        """A batch came back from ``worker``."""

    def retry(self) -> None:
        """A batch is attempted again."""

    def worker_failure(self, reason: LossReason) -> None:
        """A worker died, hung, failed to start or was preempted."""

    def in_flight(self, count: int) -> None:
        """Molecules fetched and not yet done."""

    def broker_error(self, operation: str) -> None:
        """A broker call failed or timed out and will be retried."""

    def registry_error(self, operation: str) -> None:
        """A Schema Registry request failed or timed out and will be retried."""

    def ray_head_error(self, kind: str) -> None:
        """A probe of the Ray head (GCS) found it ``slow`` (answered late or not in time) or
        ``unreachable``."""

    def pool_state(self, by_state: dict[str, int], desired: int, worker_seconds: float) -> None:
        """Workers by state, the size the pool wants, and total worker-seconds so far."""

    def lag(self, group: str, partitions: Mapping[tuple[str, int], PartitionLag]) -> None:
        """The lag of every (topic, partition) that this member of ``group`` holds now: a
        partition missing from a later call has been revoked."""

    def worker_ready(self, model: str, model_version: str) -> None:
        """A worker has loaded ``model`` at ``model_version`` and takes batches."""

    def revoked(self, partitions: list[tuple[str, int]]) -> None:
        """Partitions (topic, partition) were taken from this consumer by a rebalance."""
