"""OpenTelemetry tracing of the data path (the ``otel`` extra).

Imported only when tracing is on (:func:`consumer.settings.tracing_wanted`): otherwise no
OpenTelemetry module loads and no batch does any tracing work. Spans, each exported by the
OTLP exporter the SDK ships (configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables):

- ``molstream.fetch`` per poll that returned records, ``molstream.schema_lookup`` per writer
  schema fetched, ``molstream.commit`` per commit;
- ``molstream.batch`` per batch, linked to every input's ``traceparent`` context, with
  ``molstream.compute`` (the call to a worker) and ``molstream.produce`` under it;
- on the worker, ``molstream.worker`` (a child of ``molstream.compute``: its context crosses
  in the request) with ``molstream.decode``, ``molstream.predict`` and ``molstream.encode``;
- per input that came with a ``traceparent``, ``molstream.prediction``: a child of the input's
  span, whose context the prediction carries on as its ``traceparent`` header, so a
  downstream consumer's span joins the input's trace.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from schemas.headers import carried_headers

TRACEPARENT = "traceparent"
Headers = Sequence[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()


def _context_of(traceparent: str | None) -> trace.SpanContext | None:
    if not traceparent:
        return None
    context = trace.get_current_span(_PROPAGATOR.extract({TRACEPARENT: traceparent}))
    span_context = context.get_span_context()
    return span_context if span_context.is_valid else None


def traceparent_of(headers: Headers) -> str | None:
    """The W3C ``traceparent`` a record carries, if it is readable text."""
    value = next((v for k, v in headers if k == TRACEPARENT), None)
    if not value:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


class Tracer:
    """A tracer of its own provider (the process's global one stays Ray's business):
    ``shutdown`` exports what is left."""

    def __init__(self, service: str, exporter: SpanExporter | None = None) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
        # OTEL_SERVICE_NAME, when set, names the service (attributes given here would win).
        named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
        self._provider = TracerProvider(resource=Resource.create(named))
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("molstream")

    def shutdown(self) -> None:
        """Export the spans still queued and stop."""
        self._provider.shutdown()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """A span of the current one (the batch's, say)."""
        with self._tracer.start_as_current_span(name):
            yield

    @contextlib.contextmanager
    def batch(self, headers: Sequence[Headers]) -> Iterator[None]:
        """The span of one batch, linked to the context of every input that carries one."""
        contexts = (_context_of(traceparent_of(h)) for h in headers)
        links = [trace.Link(c) for c in contexts if c is not None]
        with self._tracer.start_as_current_span(
            "molstream.batch", links=links, kind=trace.SpanKind.CONSUMER
        ):
            yield

    @contextlib.contextmanager
    def remote(self, traceparent: str | None, name: str) -> Iterator[None]:
        """A span whose parent crossed from another process as ``traceparent``."""
        parent = _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else None
        with self._tracer.start_as_current_span(name, context=parent):
            yield

    def traceparent(self) -> str | None:
        """The current span's context as a ``traceparent`` (to send along)."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get(TRACEPARENT)

    def carry(self, headers: Headers) -> list[tuple[str, bytes]]:
        """An output's headers (:func:`schemas.headers.carried_headers`), the input's
        ``traceparent`` replaced by that of a ``molstream.prediction`` span, a child of the
        input's span."""
        carried = carried_headers(headers)
        parent = traceparent_of(carried)
        if _context_of(parent) is None:
            return carried
        context = _PROPAGATOR.extract({TRACEPARENT: parent or ""})
        span = self._tracer.start_span(
            "molstream.prediction", context=context, kind=trace.SpanKind.PRODUCER
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        child = carrier[TRACEPARENT].encode()
        return [(k, child if k == TRACEPARENT else v) for k, v in carried]
