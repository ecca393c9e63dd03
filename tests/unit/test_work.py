"""Unit tests for consumer.pool.batch_work: a batch's decode, predict and encode, as a worker
does it."""

from __future__ import annotations

import pickle

import pytest
from aiokafka.partitioner import DefaultPartitioner

from consumer.errors import ModelOutputError
from consumer.models import ModelResult
from consumer.models.synthetic import SyntheticModel
from consumer.pool.batch_work import compute, fail
from consumer.state.work_messages import OutputSpec, Produced, WorkRequest, WorkResult, pack, unpack
from schemas import MOLECULE_CODEC, PREDICTION_CODEC, Molecule, Status
from schemas.codec import load_schema
from schemas.errors import BadMagicError, EmptyRecordError, TooLargeError
from schemas.framing import registry_framed
from schemas.wire import Decoder

SPEC = OutputSpec(partitions=(0, 1, 2), schema_id=None, max_smiles_length=10, max_id_length=8)


def _request(
    values: list[bytes | None],
    headers: list[tuple[tuple[str, bytes], ...]] | None = None,
    **kwargs: object,
) -> WorkRequest:
    n = len(values)
    return WorkRequest(
        values=values,
        headers=list(headers or [()] * n),
        writers=kwargs.pop("writers", [None] * n),  # type: ignore[arg-type]
        topics=["molecules"] * n,
        partitions=[4] * n,
        offsets=list(range(100, 100 + n)),
        ages_s=[0.25] * n,
        attempts=1,
        spec=kwargs.pop("spec", SPEC),  # type: ignore[arg-type]
    )


def _value(i: int, smiles: str = "CCO") -> bytes:
    return MOLECULE_CODEC.encode(Molecule(f"m{i}", smiles))


def _all(result_produced: dict[int, list[Produced]]) -> dict[bytes, bytes]:
    return {k: v for records in result_produced.values() for k, v, _ in records}


def test_a_batch_comes_back_encoded_keyed_and_placed_as_kafkas_partitioner_would() -> None:
    values: list[bytes | None] = [_value(i) for i in range(20)]
    result = compute(_request(values), SyntheticModel(), plugin="synthetic", worker="worker-7")
    partitioner = DefaultPartitioner()
    for partition, records in result.produced.items():
        for key, _, _ in records:
            assert partitioner(key, [0, 1, 2], [0, 1, 2]) == partition
    by_key = _all(result.produced)
    assert sorted(by_key) == sorted(f"m{i}".encode() for i in range(20))
    prediction = PREDICTION_CODEC.decode(by_key[b"m3"])
    assert prediction.status is Status.OK and prediction.outputs == {"length": 3.0}
    assert (prediction.worker, prediction.model, prediction.attempts) == (
        "worker-7",
        "synthetic",
        1,
    )
    assert (prediction.source_topic, prediction.source_partition, prediction.source_offset) == (
        "molecules",
        4,
        103,
    )
    assert result.statuses == [Status.OK] * 20 and result.rejected == {}


def test_values_that_do_not_decode_come_back_as_their_index_and_error() -> None:
    values: list[bytes | None] = [_value(0), b"", b"garbage!", _value(3)]
    result = compute(_request(values), SyntheticModel(), plugin="synthetic", worker="w")
    assert isinstance(result.rejected[1], EmptyRecordError)
    assert isinstance(result.rejected[2], BadMagicError)
    assert result.statuses == [Status.OK, None, None, Status.OK]
    assert sorted(_all(result.produced)) == [b"m0", b"m3"]
    pickle.loads(pickle.dumps(result))  # it travels back from a Ray actor


def test_too_long_smiles_are_invalid_without_reaching_the_model() -> None:
    seen: list[list[str]] = []

    class Spy(SyntheticModel):
        def predict(self, smiles: list[str]) -> list[ModelResult]:
            seen.append(smiles)
            return super().predict(smiles)

    values: list[bytes | None] = [_value(0, "C" * 11), _value(1, "CC")]
    result = compute(_request(values), Spy(), plugin="spy", worker="w")
    assert seen == [["CC"]]
    assert result.statuses == [Status.INVALID_INPUT, Status.OK]


def test_a_wrong_count_or_an_unknown_result_type_fails_the_batch() -> None:
    class Short(SyntheticModel):
        def predict(self, smiles: list[str]) -> list[ModelResult]:
            return []

    class Odd(SyntheticModel):
        def predict(self, smiles: list[str]) -> list[ModelResult]:
            return ["nope"] * len(smiles)  # type: ignore[list-item]

    with pytest.raises(RuntimeError, match="0 results for 1"):
        compute(_request([_value(0)]), Short(), plugin="short", worker="w")
    with pytest.raises(ModelOutputError, match="'odd' returned str"):
        compute(_request([_value(0)]), Odd(), plugin="odd", worker="w")


def test_fail_makes_failed_predictions_from_the_keys_without_decoding() -> None:
    # The second value would not decode, the third is hostile: the consumer reads neither.
    values: list[bytes | None] = [_value(0), b"", b"\x00\x00\x00\x00\x07" + b"\xff" * 20]
    keys = [b"m0", None, b"\xffbad-key-and-too-long"]
    result = fail(_request(values), keys, "BatchFailedError: boom", model="reference")
    predictions = [PREDICTION_CODEC.decode(v) for v in _all(result.produced).values()]
    assert sorted(p.id for p in predictions) == ["", "m0", "\ufffdbad-key"]
    for prediction in predictions:
        assert prediction.status is Status.FAILED and prediction.error == "BatchFailedError: boom"
        assert (prediction.model, prediction.worker, prediction.smiles) == ("reference", "", "")
    assert result.rejected == {} and result.statuses == [Status.FAILED] * 3


def test_an_over_long_id_does_not_decode_and_an_over_long_smiles_is_not_copied_whole() -> None:
    values: list[bytes | None] = [
        MOLECULE_CODEC.encode(Molecule("m" * 9, "C")),
        MOLECULE_CODEC.encode(Molecule("m1", "C" * 5000)),
    ]
    result = compute(_request(values), SyntheticModel(), plugin="synthetic", worker="w")
    assert isinstance(result.rejected[0], TooLargeError) and "9 characters" in str(
        result.rejected[0]
    )
    (value,) = _all(result.produced).values()
    prediction = PREDICTION_CODEC.decode(value)
    assert prediction.status is Status.INVALID_INPUT and prediction.smiles == "C" * 10


def test_registry_framed_values_decode_with_the_writer_sent_along_and_encode_likewise() -> None:
    v1 = load_schema("molecule.v1")
    body = MOLECULE_CODEC.encode_with(v1, {"id": "a", "smiles": "N"})[10:]
    writer = ("schema id 7", v1)
    spec = OutputSpec(partitions=(0,), schema_id=42, max_smiles_length=10, max_id_length=8)
    request = _request([registry_framed(7, body)], writers=[writer], spec=spec)
    result = compute(request, SyntheticModel(), plugin="synthetic", worker="w")
    ((key, value, _),) = result.produced[0]
    assert key == b"a" and value[:5] == registry_framed(42, b"")
    assert PREDICTION_CODEC.decode_body(value[5:], PREDICTION_CODEC.schema).smiles == "N"


def test_carried_headers_travel_on_and_the_schema_id_header_does_not() -> None:
    headers = (("traceparent", b"00-abc"), ("__value_schema_id", b"\x00\x00\x00\x00\x07"))
    v1 = load_schema("molecule.v1")
    body = MOLECULE_CODEC.encode_with(v1, {"id": "a", "smiles": "N"})[10:]
    request = _request([body], headers=[headers], writers=[("schema id 7", v1)])
    result = compute(request, SyntheticModel(), plugin="synthetic", worker="w")
    ((_, _, carried),) = [r for records in result.produced.values() for r in records]
    assert carried == [("traceparent", b"00-abc")]
    assert Decoder(MOLECULE_CODEC).decode(_value(1)) == Molecule("m1", "CCO")


def test_requests_and_results_cross_as_bytes_and_come_back_whole() -> None:
    request = _request([_value(0), b""])
    result = compute(request, SyntheticModel(), plugin="synthetic", worker="w")
    assert unpack(pack(request), WorkRequest) == request
    back = unpack(pack(result), WorkResult)
    assert back.produced == result.produced and back.statuses == result.statuses
    assert type(back.rejected[1]) is EmptyRecordError
    with pytest.raises(TypeError, match="expected a WorkResult, got WorkRequest"):
        unpack(pack(request), WorkResult)


def test_a_result_that_no_prediction_can_hold_fails_the_batch_once() -> None:
    class NotNumbers(SyntheticModel):
        def predict(self, smiles: list[str]) -> list[ModelResult]:
            return [ModelResult(Status.OK, {"x": "high"})] * len(smiles)  # type: ignore[dict-item]

    with pytest.raises(ModelOutputError, match="'synthetic' returned a result for molecule 'm0'"):
        compute(_request([_value(0)]), NotNumbers(), plugin="p", worker="w")


def test_the_latency_adds_the_workers_time_to_the_age_sent_along() -> None:
    result = compute(_request([_value(0)]), SyntheticModel(), plugin="s", worker="w")
    (value,) = _all(result.produced).values()
    assert 250 <= PREDICTION_CODEC.decode(value).latency_ms < 1250
