"""Tracing (the otel extra) with the SDK's in-memory exporter, over the in-memory pipeline:
batch spans link every input's trace, the worker's span is a child of the consumer's call
across the (pickled) request, and each prediction's traceparent continues its input's trace."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from aiokafka import TopicPartition
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from consumer.input_settings import RecordLimits
from consumer.ops.tracing import Tracer
from consumer.ops_settings import OpsSettings, tracing_env
from consumer.pool.model_actor import ModelWorker
from schemas import MOLECULE_CODEC, Molecule
from tests.unit.fakes import InProcessPool, Record, run_pipeline

LIMITS = RecordLimits(
    max_record_bytes=10_000, max_key_bytes=40, max_header_count=8, max_header_bytes=500
)
TP = TopicPartition("molecules", 0)


def _traceparent(i: int) -> bytes:
    return f"00-{i + 1:032x}-{i + 1:016x}-01".encode()


def _headers(count: int, untraced: int) -> list[list[tuple[str, bytes]]]:
    return [[] if i == untraced else [("traceparent", _traceparent(i))] for i in range(count)]


def _one(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_spans_link_the_inputs_cross_to_the_worker_and_continue_each_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exported, on_worker = InMemorySpanExporter(), InMemorySpanExporter()
    monkeypatch.setattr(trace_exporter, "OTLPSpanExporter", lambda: on_worker)
    records = [
        Record(i, f"m{i}".encode(), MOLECULE_CODEC.encode(Molecule(f"m{i}", "CCO")), headers)
        for i, headers in enumerate(_headers(8, untraced=5))
    ]
    tracer = Tracer("molstream", exporter=exported)
    worker = ModelWorker("fake-worker", "synthetic", {}, tracing_env={})
    output, _ = asyncio.run(
        run_pipeline({TP: records}, LIMITS, pool=InProcessPool(worker), tracer=tracer)
    )
    assert worker._tracer is not None
    worker._tracer.shutdown()
    tracer.shutdown()
    spans = [*exported.get_finished_spans(), *on_worker.get_finished_spans()]

    batches = _one(spans, "molstream.batch")
    linked = {link.context.trace_id for b in batches for link in b.links}
    assert linked == {i + 1 for i in range(8) if i != 5}, "every input's trace is linked"
    by_id = {s.context.span_id: s for s in spans}
    for span in _one(spans, "molstream.worker"):
        parent = by_id[span.parent.span_id]  # type: ignore[union-attr]
        assert parent.name == "molstream.compute", "the worker's span crossed from the call"
        assert by_id[parent.parent.span_id].name == "molstream.batch"  # type: ignore[union-attr]
    for stage in ("molstream.decode", "molstream.predict", "molstream.encode"):
        parents = {by_id[s.parent.span_id].name for s in _one(spans, stage) if s.parent}
        assert parents == {"molstream.worker"}, stage
    assert _one(spans, "molstream.produce") and _one(spans, "molstream.fetch")

    for key, _, headers in output.predicted:
        i = int(key[1:])
        carried = dict(headers or [])
        if i == 5:
            assert "traceparent" not in carried
            continue
        _, trace_id, span_id, _ = carried["traceparent"].decode().split("-")
        assert int(trace_id, 16) == i + 1, "the prediction continues its input's trace"
        child = by_id[int(span_id, 16)]
        assert child.name == "molstream.prediction" and child.parent.span_id == i + 1  # type: ignore[union-attr]


def test_tracing_is_off_unless_configured() -> None:
    off = OpsSettings()
    assert tracing_env(off, {"OTEL_SERVICE_NAME": "x"}) is None
    assert tracing_env(off, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is not None
    assert tracing_env(OpsSettings(otel=True), {}) == {}
    assert tracing_env(OpsSettings(otel=True), {"OTEL_SDK_DISABLED": "true"}) is None


def test_off_nothing_of_tracing_is_imported() -> None:
    probe = (
        "import asyncio, sys\n"
        "from consumer.processor import StreamProcessor\n"
        "from consumer.settings import ConsumerSettings\n"
        "async def build():\n"
        "    assert StreamProcessor(ConsumerSettings()).tracer is None\n"
        "asyncio.run(build())\n"
        "print(sorted(m for m in sys.modules if m == 'consumer.ops.tracing'"
        " or m.startswith('opentelemetry.sdk.trace')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
