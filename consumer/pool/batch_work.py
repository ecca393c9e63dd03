"""A batch's per-record work, done where it scales out: on the worker (pure, no I/O).

The consumer only moves bytes (:mod:`consumer.state.work_messages`); the worker decodes the
molecules, runs the model and encodes the predictions, keyed and grouped by output partition,
ready to produce. A value that does not decode comes back as its index and error: the
consumer dead-letters the original record byte for byte.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import fastavro
from confluent_kafka import murmur2

from consumer.errors import ModelOutputError
from consumer.models.base import Model, ModelResult, as_result
from consumer.state.work_messages import Headers, Produced, WorkRequest, WorkResult
from schemas import MOLECULE_CODEC, PREDICTION_CODEC, DecodeError, Molecule, Status
from schemas.errors import TooLargeError, UnknownSchemaError
from schemas.framing import SingleObject, Writer, frame_of, registry_framed, single_object
from schemas.headers import carried_headers


@dataclass(frozen=True, slots=True)
class Maker:
    """Who made the predictions: model, version, worker (empty when none computed them)."""

    model: str
    model_version: str
    worker: str


class WorkTrace(Protocol):
    """How a worker traces a batch (see :mod:`consumer.ops.tracing`); :data:`NO_TRACE` does not."""

    def stage(self, name: str) -> AbstractContextManager[None]:
        """A span around one step of the batch."""
        ...

    def carry(self, headers: Headers) -> list[tuple[str, bytes]]:
        """The headers an input's prediction carries."""
        ...


class _NoTrace:
    """Tracing off: no span, the carried headers as they are."""

    def stage(self, name: str) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def carry(self, headers: Headers) -> list[tuple[str, bytes]]:
        return carried_headers(headers)


NO_TRACE: WorkTrace = _NoTrace()


def compute(
    request: WorkRequest, model: Model, *, plugin: str, worker: str, trace: WorkTrace = NO_TRACE
) -> WorkResult:
    """The worker's whole job for one batch: decode, screen, predict, encode.

    Raises what the model raises (the batch fails), ``RuntimeError`` for a wrong count of
    results and :class:`~consumer.errors.ModelOutputError` for a result no model may return.
    """
    started = time.monotonic()
    with trace.stage("molstream.decode"):
        molecules, rejected = decode_all(request)
    limit = request.spec.max_smiles_length
    too_long = ModelResult.invalid(f"SMILES longer than {limit} characters")
    to_model = [i for i, m in molecules.items() if len(m.smiles) <= limit]
    with trace.stage("molstream.predict"):
        answers = list(model.predict([molecules[i].smiles for i in to_model])) if to_model else []
    if len(answers) != len(to_model):
        raise RuntimeError(f"model returned {len(answers)} results for {len(to_model)} inputs")
    results = dict.fromkeys(molecules, too_long)
    results.update((i, as_result(a, plugin=plugin)) for i, a in zip(to_model, answers, strict=True))
    maker = Maker(model.name, model.version, worker)
    with trace.stage("molstream.encode"):
        return encode_all(request, molecules, rejected, results, maker, started, trace.carry)


def fail(
    request: WorkRequest, keys: Sequence[bytes | None], error: str, *, model: str
) -> WorkResult:
    """FAILED predictions for a batch no worker could compute, made by the consumer from what
    it has: it never decodes a molecule body (DESIGN.md, "Trust boundary"), so each id is its
    record's key (lossy where the key is not UTF-8) and the SMILES is unknown (empty)."""
    started = time.monotonic()
    limit = request.spec.max_id_length
    molecules = {
        i: Molecule((key or b"").decode("utf-8", "replace")[:limit], "")
        for i, key in enumerate(keys)
    }
    results = dict.fromkeys(molecules, ModelResult(Status.FAILED, {}, error))
    return encode_all(request, molecules, {}, results, Maker(model, "", ""), started)


def decode_all(request: WorkRequest) -> tuple[dict[int, Molecule], dict[int, DecodeError]]:
    """The molecules that decode, by index, and why the others do not."""
    molecules: dict[int, Molecule] = {}
    rejected: dict[int, DecodeError] = {}
    max_id = request.spec.max_id_length
    for i, (value, headers, writer) in enumerate(
        zip(request.values, request.headers, request.writers, strict=True)
    ):
        try:
            molecule = _decode(value, headers, writer)
        except DecodeError as exc:
            rejected[i] = exc
            continue
        if len(molecule.id) > max_id:
            rejected[i] = TooLargeError(
                f"molecule id of {len(molecule.id)} characters: over {max_id}"
            )
        else:
            molecules[i] = molecule
    return molecules, rejected


def _decode(value: bytes | None, headers: Headers, writer: Writer | None) -> Molecule:
    framed = frame_of(value, headers)
    if isinstance(framed, SingleObject):
        return MOLECULE_CODEC.decode_single_object(framed)
    if writer is None:  # the consumer fetches every registry writer first: a bug if not
        raise UnknownSchemaError("registry-framed value sent without its writer schema")
    source, schema = writer
    return MOLECULE_CODEC.decode_body(framed.body, schema, source=source)


def encode_all(
    request: WorkRequest,
    molecules: dict[int, Molecule],
    rejected: dict[int, DecodeError],
    results: dict[int, ModelResult],
    maker: Maker,
    started: float,
    carry: Callable[[Headers], list[tuple[str, bytes]]] = carried_headers,
) -> WorkResult:
    """Each decoded molecule's prediction, encoded and placed on its output partition;
    ``started`` is when the batch arrived (monotonic), ``carry`` what headers it keeps."""
    spec = request.spec
    frame = _framer(spec.schema_id)
    now, here_s = time.time(), time.monotonic() - started
    produced: dict[int, list[Produced]] = {}
    statuses: list[Status | None] = [None] * len(request.values)
    for i, molecule in molecules.items():
        result = results[i]
        statuses[i] = result.status
        datum = {
            "id": molecule.id,
            "smiles": molecule.smiles[: spec.max_smiles_length],  # never an over-long copy
            "status": result.status.value,
            "outputs": result.outputs,
            "error": result.error,
            "model": maker.model,
            "model_version": maker.model_version,
            "worker": maker.worker,
            "attempts": request.attempts,
            "source_topic": request.topics[i],
            "source_partition": request.partitions[i],
            "source_offset": request.offsets[i],
            "produced_at": int(now * 1000),
            "latency_ms": (request.ages_s[i] + here_s) * 1000,
        }
        key = molecule.id.encode()
        headers = carry(request.headers[i]) if request.headers[i] else None
        partition = spec.partitions[murmur2(key, len(spec.partitions))]
        produced.setdefault(partition, []).append(
            (key, frame(_body(datum, maker)), headers or None)
        )
    return WorkResult(produced, statuses, rejected)


def _body(datum: Mapping[str, object], maker: Maker) -> bytes:
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, PREDICTION_CODEC.schema, datum)
    except Exception as exc:  # fastavro raises many types on a value its schema refuses
        # A ModelResult built by the plugin with outputs that are not numbers, say: the
        # plugin's bug, the same for every try, so the batch fails once.
        raise ModelOutputError(
            f"model {maker.model!r} returned a result for molecule {datum['id']!r} that no "
            f"prediction can hold: {type(exc).__name__}: {exc}"
        ) from exc
    return buf.getvalue()


def _framer(schema_id: int | None) -> Callable[[bytes], bytes]:
    if schema_id is None:
        fingerprint = PREDICTION_CODEC.fingerprint
        return lambda body: single_object(fingerprint, body)
    return lambda body: registry_framed(schema_id, body)
