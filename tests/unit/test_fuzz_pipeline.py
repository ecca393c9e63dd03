"""Fuzzing the data path: random records (keys, values in every framing, random header keys
and values) go through the real intake, dispatch, worker decode and sink over in-memory fakes.
No exception escapes; every offset ends as one prediction or one dead letter (its value byte
for byte); every partition's commit reaches its end.

The suite runs a short budget; the long one is a documented command:
``MOLSTREAM_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/unit/test_fuzz_pipeline.py``
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, cast

from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.batching import Batcher
from consumer.dispatch import Dispatcher, DispatchLimits
from consumer.hooks import Hooks
from consumer.intake import Intake
from consumer.items import Item
from consumer.ledger import Ledger
from consumer.screen import RecordLimits
from consumer.sink import Sink
from consumer.throughput import Throughput
from schemas import MOLECULE_CODEC, Molecule
from schemas.framing import VALUE_SCHEMA_ID_HEADER, registry_framed, single_object
from schemas.wire import WriterSchemas
from tests.unit.fakes import FakeConsumer, InProcessPool, Record, RecordingOutput

EXAMPLES = int(os.environ.get("MOLSTREAM_FUZZ_EXAMPLES", "150"))
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
    async def run() -> tuple[RecordingOutput, Ledger]:
        output, ledger, hooks = RecordingOutput(), Ledger(16, 2000), Hooks()
        consumer = FakeConsumer(by_partition)
        dispatcher = Dispatcher(
            pool=cast(Any, InProcessPool()),
            sink=Sink(output=cast(Any, output), ledger=ledger, hooks=hooks),
            ledger=ledger,
            throughput=Throughput(completed=lambda: ledger.completed, clock=time.monotonic),
            hooks=hooks,
            limits=DispatchLimits(max_attempts=2, batch_timeout_s=5.0, model="synthetic"),
            output_spec=lambda: output.spec(30, 20),
            clock=time.monotonic,
        )
        intake = Intake(
            consumer=lambda: cast(Any, consumer),
            ledger=ledger,
            dispatcher=dispatcher,
            writers=WriterSchemas(None),
            batcher=Batcher[Item](batch_size=4, batch_wait_s=0.0),
            limits=LIMITS,
            hooks=hooks,
            clock=time.monotonic,
        )
        fetching = asyncio.create_task(intake.fetch_routine())
        try:
            async with asyncio.timeout(10):
                while not all(
                    ledger.state(tp).committable == len(rs) for tp, rs in by_partition.items() if rs
                ):
                    assert not fetching.done(), fetching
                    await asyncio.sleep(0.001)
                await dispatcher.drain(1.0)
        finally:
            fetching.cancel()
            await asyncio.gather(fetching, return_exceptions=True)
        return output, ledger

    return asyncio.run(run())


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
