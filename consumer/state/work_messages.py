"""What crosses to a worker and back: a batch's request and its result (the message contract).

The consumer only moves bytes. It sends a batch's raw values and what provenance needs
(:class:`WorkRequest`); the worker (:mod:`consumer.pool.batch_work`) decodes, predicts and
encodes, and returns the predictions keyed and grouped by output partition, ready to produce
(:class:`WorkResult`). No per-molecule Python object travels back, so the consumer unpickles
one result per batch.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from schemas import DecodeError, Status
from schemas.framing import Writer

Headers = Sequence[tuple[str, bytes]]
Produced = tuple[bytes, bytes, list[tuple[str, bytes]] | None]
"""key, value, headers of one output record."""
M = TypeVar("M", "WorkRequest", "WorkResult")


# Not slotted: a slotted dataclass pickles through a Python ``__getstate__``, and these cross
# to a worker and back once per batch.


@dataclass(frozen=True)
class OutputSpec:
    """How predictions are written: the output topic's partitions, the framing, the limits."""

    partitions: tuple[int, ...]
    """The output topic's partitions, sorted (keys are spread over them as Kafka's default
    partitioner does: murmur2 of the key, librdkafka's C version)."""
    schema_id: int | None
    """Registry id of the prediction schema, or None for single-object encoding."""
    max_smiles_length: int
    """Longer SMILES are INVALID_INPUT, and their predictions carry only this much of them."""
    max_id_length: int
    """A molecule whose id is longer does not decode (a dead letter)."""


@dataclass(frozen=True)
class WorkRequest:
    """One batch as the worker receives it: per record, parallel lists."""

    values: list[bytes | None]
    headers: list[Headers]
    writers: list[Writer | None]
    """The writer schema of each registry-framed value (fetched by the consumer)."""
    topics: list[str]
    partitions: list[int]
    offsets: list[int]
    ages_s: list[float]
    """How long each record had been in the consumer when the batch left for the worker
    (the worker adds its own time: no clocks of two hosts are compared)."""
    attempts: int
    spec: OutputSpec
    trace: str | None = None
    """The ``traceparent`` of the consumer's span of this call, when tracing is on."""


@dataclass(frozen=True)
class WorkResult:
    """What a batch became: output records by partition, a status per record."""

    produced: dict[int, list[Produced]]
    statuses: list[Status | None]
    """Per record of the request: its prediction's status, None where it did not decode."""
    rejected: dict[int, DecodeError]
    """Index → why the value does not decode (dead-lettered, no prediction)."""


def pack(message: WorkRequest | WorkResult) -> bytes:
    """A request or result as the bytes that cross to a worker and back: pickled with the C
    pickler, since Ray's own (cloudpickle) calls back into Python for every container."""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(payload: bytes, kind: type[M]) -> M:
    """The ``kind`` of message :func:`pack` made."""
    message = pickle.loads(payload)
    if not isinstance(message, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(message).__name__}")
    return message
