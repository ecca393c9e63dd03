"""The records on the wire, as typed Python values."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Status(enum.StrEnum):
    """Outcome of one molecule."""

    OK = "OK"
    INVALID_INPUT = "INVALID_INPUT"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Molecule:
    """One input molecule (topic value, keyed by ``id``)."""

    id: str
    smiles: str
    properties: dict[str, str] = field(default_factory=dict)
    submitted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """The result for one input molecule (topic value, keyed by ``id``)."""

    id: str
    smiles: str
    status: Status
    outputs: dict[str, float]
    error: str | None
    model: str
    model_version: str
    worker: str
    attempts: int
    source_topic: str
    source_partition: int
    source_offset: int
    produced_at: datetime
    latency_ms: float
