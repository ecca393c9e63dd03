"""The data path's steps, built for one consumer, in the order the data flows."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer

from consumer import traced
from consumer.dispatch import Dispatcher, DispatchLimits
from consumer.hooks import Hooks
from consumer.intake.batching import Batcher
from consumer.intake.commits import Committer, LagReader
from consumer.intake.fetch_loop import Intake
from consumer.intake.rebalance import RebalanceListener
from consumer.ops_settings import tracing_env
from consumer.pool.replica_pool import ReplicaPool, pool_for
from consumer.settings import ConsumerSettings
from consumer.sink.output import Output
from consumer.sink.publish import Sink
from consumer.state.ledger import Ledger
from consumer.state.throughput import Throughput
from schemas.registry import SchemaRegistry
from schemas.wire import WriterSchemas

if TYPE_CHECKING:
    from consumer.ops.tracing import Tracer


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the steps share: the settings, the book, the clients, the hooks."""

    settings: ConsumerSettings
    consumer: Callable[[], AIOKafkaConsumer]
    ledger: Ledger
    pool: ReplicaPool
    output: Output
    registry: SchemaRegistry | None
    throughput: Throughput
    hooks: Hooks
    clock: Callable[[], float]
    tracer: Tracer | None = None

    @classmethod
    def for_settings(
        cls,
        settings: ConsumerSettings,
        *,
        consumer: Callable[[], AIOKafkaConsumer],
        hooks: Hooks,
        clock: Callable[[], float],
    ) -> Wiring:
        """The collaborators ``molstream consume`` builds from its settings."""
        window = settings.max_in_flight, settings.max_in_flight_bytes
        ledger = Ledger(*window, on_in_flight=hooks.in_flight)
        registry = None
        if settings.schema_registry_url is not None:
            registry = SchemaRegistry(settings, on_error=hooks.registry_error)
        return cls(
            settings=settings,
            consumer=consumer,
            ledger=ledger,
            pool=pool_for(
                settings,
                on_failure=hooks.worker_failure,
                on_ready=lambda info: hooks.worker_ready(info.model, info.model_version),
            ),
            output=Output(
                settings,
                output_topic=settings.output_topic,
                dlq_topic=settings.dlq_topic,
                on_error=hooks.broker_error,
                registry=registry if settings.writes_registry_framing else None,
            ),
            registry=registry,
            throughput=Throughput(
                completed=lambda: ledger.completed,
                clock=clock,
                slots=settings.worker_concurrency,
            ),
            hooks=hooks,
            clock=clock,
            tracer=traced.tracer_for(tracing_env(settings, os.environ)),
        )


@dataclass(frozen=True, slots=True)
class Pipeline:
    """intake → dispatch (pool) → sink; commits and lag beside; the rebalance listener."""

    intake: Intake
    dispatcher: Dispatcher
    committer: Committer
    lag_reader: LagReader
    listener: RebalanceListener

    @classmethod
    def build(cls, w: Wiring) -> Pipeline:
        """The steps of one consumer."""
        dispatcher, intake = _data_path(w)
        committer = Committer(
            consumer=w.consumer,
            ledger=w.ledger,
            hooks=w.hooks,
            interval_s=w.settings.commit_interval_s,
            broker_timeout_s=w.settings.broker_timeout_s,
            tracer=w.tracer,
        )
        listener = RebalanceListener(
            intake=intake,
            dispatcher=dispatcher,
            committer=committer,
            ledger=w.ledger,
            hooks=w.hooks,
            drain_timeout_s=w.settings.shutdown_timeout_s,
            clock=w.clock,
        )
        lag_reader = LagReader(
            consumer=w.consumer,
            ledger=w.ledger,
            hooks=w.hooks,
            group=w.settings.group_id,
            broker_timeout_s=w.settings.broker_timeout_s,
        )
        return cls(intake, dispatcher, committer, lag_reader, listener)


def _data_path(w: Wiring) -> tuple[Dispatcher, Intake]:
    s = w.settings
    sink = Sink(output=w.output, ledger=w.ledger, hooks=w.hooks)
    dispatcher = Dispatcher(
        pool=w.pool,
        sink=sink,
        ledger=w.ledger,
        throughput=w.throughput,
        hooks=w.hooks,
        limits=DispatchLimits(s.max_attempts, s.batch_timeout_s, s.model),
        output_spec=functools.partial(w.output.spec, s.max_smiles_length, s.max_id_length),
        clock=w.clock,
        tracer=w.tracer,
    )
    intake = Intake(
        consumer=w.consumer,
        ledger=w.ledger,
        dispatcher=dispatcher,
        writers=WriterSchemas(w.registry),
        batcher=Batcher(batch_size=s.batch_size, batch_wait_s=s.batch_wait_s),
        limits=s.record_limits,
        hooks=w.hooks,
        clock=w.clock,
        tracer=w.tracer,
    )
    return dispatcher, intake
