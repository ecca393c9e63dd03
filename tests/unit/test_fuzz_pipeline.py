"""Fuzzing the data path: random records (keys, values in every framing, random header keys
and values) go through the real intake, dispatch, worker decode and sink over in-memory fakes.
No exception escapes; every offset ends as one prediction or one dead letter (its value byte
for byte); every partition's commit reaches its end.

The suite runs a short budget; the long one is a documented command:
``MOLSTREAM_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/unit/test_fuzz_pipeline.py``
"""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.input_settings import RecordLimits
from consumer.state.ledger import Ledger
from schemas import MOLECULE_CODEC, Molecule
from schemas.framing import VALUE_SCHEMA_ID_HEADER, registry_framed, single_object
from tests.fuzzing import examples
from tests.unit.fakes import Record, RecordingOutput, run_pipeline

EXAMPLES = examples(150)
LIMITS = RecordLimits(
    max_record_bytes=400, max_key_bytes=40, max_header_count=4, max_header_bytes=100
)
TPS = [TopicPartition("molecules", 0), TopicPartition("molecules", 1)]

molecules = st.builds(Molecule, st.text(max_size=50), st.text(max_size=60))
bodies = st.one_of(
    molecules.map(MOLECULE_CODEC.encode),  # valid single-object values
    molecules.map(MOLECULE_CODEC.encode_body).map(
        lambda b: single_object(MOLECULE_CODEC.fingerprint, b[:-1])
    ),
    st.binary(max_size=40).map(lambda b: single_object(MOLECULE_CODEC.fingerprint, b)),
    st.binary(max_size=40).map(lambda b: registry_framed(7, b)),  # no registry configured
    st.binary(max_size=500),  # any bytes, some over the record bound
    st.none(),
)
OURS = [VALUE_SCHEMA_ID_HEADER, "molstream.error.stage", "traceparent"]
header_keys = st.one_of(st.text(max_size=12), st.sampled_from(OURS))
records = st.lists(
    st.tuples(
        st.none() | st.binary(max_size=60),
        bodies,
        st.lists(st.tuples(header_keys, st.binary(max_size=30)), max_size=6),
    ),
    max_size=40,
)


def _run(by_partition: dict[TopicPartition, list[Record]]) -> tuple[RecordingOutput, Ledger]:
    return asyncio.run(run_pipeline(by_partition, LIMITS))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=len(TPS), max_size=len(TPS)))
def test_every_random_record_ends_as_a_prediction_or_a_dead_letter(
    partitions: list[list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]],
) -> None:
    by_partition = {
        tp: [Record(offset, key, value, headers) for offset, (key, value, headers) in enumerate(rs)]
        for tp, rs in zip(TPS, partitions, strict=True)
    }
    output, ledger = _run(by_partition)
    total = sum(len(rs) for rs in by_partition.values())
    assert len(output.predicted) + len(output.letters) == total
    letters = {(d.partition, d.offset): d for d in output.letters}
    assert len(letters) == len(output.letters), "one dead letter per record at most"
    for tp, rs in by_partition.items():
        for record in rs:
            letter = letters.get((tp.partition, record.offset))
            if letter is not None:
                assert letter.value == record.value, "dead letters keep the value byte for byte"
                assert all(
                    k != "molstream.error.stage" or v != b"" for k, v in letter.kafka_headers()[-7:]
                )
    assert ledger.in_flight == 0 and ledger.in_flight_bytes == 0
