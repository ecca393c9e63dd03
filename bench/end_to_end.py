"""One end-to-end run of the processor over a backlog, on the broker and the Ray cluster a
benchmark started (:mod:`bench.throughput` and the benches that repeat its steps)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bench.harness import Timing, create_topics
from bench.monitor import LoadMonitor, process_monitor
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.models.reference import ReferenceModel
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import Molecule
from tests.harness import consumer_settings, publish, wait_until


@dataclass(frozen=True)
class Run:
    """One end-to-end run over a backlog."""

    model: str
    workers: int
    molecules: int
    batch_size: int
    max_in_flight: int
    total_s: float
    steady_s: float
    steady_molecules_per_s: float
    total_molecules_per_s: float
    driver_cpu_share: float
    """CPU seconds of this (consumer) process per wall second in the steady window: 1.0 is
    one core saturated, the bound when the model costs nothing."""
    cpu_us_per_molecule: float
    """CPU of this (consumer) process per molecule in the steady window."""
    machine_load: dict[str, Any]
    """:meth:`LoadMonitor.summary` from the processor's start to the last prediction."""


@dataclass(frozen=True)
class Env:
    """The broker and the Ray cluster every step runs on."""

    broker: EmbeddedBroker
    cluster: LocalCluster

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    def watch(self) -> LoadMonitor:
        """A load monitor of this process (the consumer), the broker, the Ray processes."""
        return process_monitor({"consumer": os.getpid(), "broker": self.broker.pid})


def raw_rate(molecules: list[Molecule], batch_size: int) -> float:
    """Molecules/s of the reference model in this process (model load excluded)."""
    model = ReferenceModel()
    smiles = [m.smiles for m in molecules]
    started = time.perf_counter()
    for i in range(0, len(smiles), batch_size):
        model.predict(smiles[i : i + batch_size])
    return len(smiles) / (time.perf_counter() - started)


def _step_settings(
    env: Env,
    topic: str,
    workers: int,
    model: str,
    options: dict[str, str],
    batch_size: int,
    max_in_flight: int,
    **overrides: Any,
) -> ConsumerSettings:
    """A step's consumer: its own topics and group, a fixed pool of ``workers`` (other
    settings in ``overrides``)."""
    return consumer_settings(
        env.bootstrap,
        env.cluster.address,
        input_topic=topic,
        output_topic=f"{topic}.predictions",
        dlq_topic=f"{topic}.dlq",
        group_id=topic,
        min_workers=workers,
        max_workers=workers,
        commit_interval_s=1.0,
        model=model,
        model_option=options,
        autoscale_interval_s=1.0,
        batch_size=batch_size,
        max_in_flight=max_in_flight,
        **overrides,
    )


@contextlib.asynccontextmanager
async def end_to_end(
    env: Env,
    topic: str,
    count: int,
    *,
    workers: int,
    model: str,
    options: dict[str, str],
    batch_size: int,
    max_in_flight: int = 2048,
    **overrides: Any,
) -> AsyncIterator[tuple[Run, Timing, StreamProcessor]]:
    """Consume the ``count`` records already on ``topic`` with ``workers`` one-CPU workers
    (other settings in ``overrides``); yields the run's figures while the processor still
    runs (its hook, for what follows)."""
    await create_topics(env.bootstrap, [f"{topic}.predictions"])
    settings = _step_settings(
        env, topic, workers, model, options, batch_size, max_in_flight, **overrides
    )
    timing = Timing()
    started = time.perf_counter()
    async with StreamProcessor(settings, hooks=timing) as processor:
        with env.watch() as monitor:
            await wait_until(lambda: timing.count >= count, 600, f"{count} predictions on {topic}")
        steady_n, steady_s, steady_cpu_s = timing.steady
        run = Run(
            model=model,
            workers=workers,
            molecules=count,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            total_s=timing.last - started,
            steady_s=steady_s,
            steady_molecules_per_s=steady_n / steady_s,
            total_molecules_per_s=count / (timing.last - started),
            driver_cpu_share=steady_cpu_s / steady_s,
            cpu_us_per_molecule=steady_cpu_s / steady_n * 1e6,
            machine_load=monitor.summary(),
        )
        yield run, timing, processor


@contextlib.asynccontextmanager
async def over_backlog(
    env: Env, topic: str, molecules: list[Molecule], **end_to_end_args: Any
) -> AsyncIterator[tuple[Run, Timing, StreamProcessor]]:
    """Publish ``molecules`` to a new ``topic`` first, then :func:`end_to_end` over them."""
    await create_topics(env.bootstrap, [topic])
    await publish(env.bootstrap, topic, molecules)
    async with end_to_end(env, topic, len(molecules), **end_to_end_args) as run:
        yield run
