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
