"""What a consumer says of its own health (read by the status endpoint)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Health:
    """Liveness and readiness facts of one consumer."""

    polled_s_ago: float
    """Time since the intake last called Kafka (a poll, or a connection attempt)."""
    assigned: bool
    """Member of the group with at least one partition."""
    workers: int
    """Workers ready, busy or deploying."""
    scaled_to_zero: bool = False
    """The pool wants no worker (``--min-workers 0`` at idle): ready all the same."""
    ray_head: str = "ok"
    """What the last probe of the Ray head (GCS) found: ok, slow or unreachable."""
    ray_answered_s_ago: float = 0.0
    """Time since the Ray head last answered a probe."""

    @property
    def ready(self) -> bool:
        """A group member with partitions, and a worker to run them (or none wanted). A slow
        Ray head does not make a consumer unready: its workers keep predicting."""
        return self.assigned and (self.workers > 0 or self.scaled_to_zero)
