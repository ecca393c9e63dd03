"""Issue 20 acceptance: tracing against an OTLP/HTTP receiver of the test's own (real broker,
real Ray): each input's trace is linked from a batch span, the worker's span is a child of
the consumer's call across the Ray call, and each prediction continues its input's trace."""

from __future__ import annotations

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import MOLECULE_CODEC, Molecule
from tests.harness import Counting, publish_raw, read_raw, wait_until
from tests.integration.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.integration

COUNT = 40


def _traceparent(i: int) -> bytes:
    return f"00-{i + 1:032x}-{i + 1:016x}-01".encode()


async def test_traces_cross_the_consumer_the_worker_and_reach_the_prediction(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray_cluster.add_spot_node()
    records = [
        (
            f"m{i}".encode(),
            MOLECULE_CODEC.encode(Molecule(f"m{i}", "CCO")),
            [("traceparent", _traceparent(i))],
        )
        for i in range(COUNT)
    ]
    sent = await publish_raw(broker.bootstrap_servers, "molecules", records)
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
        settings = ConsumerSettings(
            bootstrap_servers=broker.bootstrap_servers,
            ray_address=ray_cluster.address,
            worker_resources={SPOT_RESOURCE: 1},
            model="synthetic",
            min_workers=1,
            max_workers=1,
            batch_size=8,
            group_id="tracing-test",
            commit_interval_s=0.2,
        )
        async with StreamProcessor(settings, hooks=Counting()) as processor:
            await wait_until(lambda: processor.committed == sent.ends, 120, "all committed")
            await wait_until(lambda: bool(receiver.named("molstream.worker")), 30, "worker spans")
        await wait_until(lambda: bool(receiver.named("molstream.batch")), 30, "batch spans")

        spans = {s.span_id: s for s in receiver.spans}
        linked = set().union(*(s.linked_trace_ids for s in receiver.named("molstream.batch")))
        assert linked >= {i + 1 for i in range(COUNT)}, "every input's trace is on a batch span"
        for worker in receiver.named("molstream.worker"):
            assert worker.service == "molstream-worker"
            compute = spans[worker.parent_span_id or 0]
            assert compute.name == "molstream.compute" and compute.service == "molstream"
            assert spans[compute.parent_span_id or 0].name == "molstream.batch"
        for name in (
            "molstream.decode",
            "molstream.predict",
            "molstream.encode",
            "molstream.fetch",
        ):
            assert receiver.named(name), name

    predictions = await read_raw(broker.bootstrap_servers, "predictions")
    assert len(predictions) == COUNT
    for record in predictions:
        i = int(record.key[1:])  # type: ignore[attr-defined]
        headers = dict(record.headers)  # type: ignore[attr-defined]
        _, trace_id, _, _ = headers["traceparent"].decode().split("-")
        assert int(trace_id, 16) == i + 1, "the prediction continues its input's trace"
