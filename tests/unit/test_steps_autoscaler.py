"""The scaling loop over in-memory fakes (pool, capacity request, lag), the clock moved by the
test: it resizes the pool as the policy decides, and no failure stops it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import TopicPartition

from consumer.scaling.autoscaler import Autoscaler, LagReader
from consumer.scaling.policy import PolicyConfig
from consumer.state.throughput import Throughput
from tests.unit.fakes import (
    FakeCapacity,
    InProcessPool,
    ManualClock,
    RecordingHooks,
    Steps,
    molecules,
    until,
)


@dataclass
class _Loop:
    """An autoscaler over fakes; ``lag`` is what it reads next, ``lag_errors`` fail reads."""

    lag: int = 0
    interval_s: float = 60.0
    lag_errors: list[Exception] = field(default_factory=list)
    clock: ManualClock = field(default_factory=ManualClock)
    pool: InProcessPool = field(default_factory=InProcessPool)
    capacity: FakeCapacity = field(default_factory=FakeCapacity)
    hooks: RecordingHooks = field(default_factory=RecordingHooks)

    async def read_lag(self) -> dict[tuple[str, int], int]:
        if self.lag_errors:
            raise self.lag_errors.pop(0)
        return {("molecules", 0): self.lag}

    def autoscaler(self, read_lag: LagReader | None = None) -> Autoscaler:
        return Autoscaler(
            pool=cast(Any, self.pool),
            config=PolicyConfig(
                min_workers=1,
                max_workers=4,
                target_drain_s=60.0,
                upscale_delay_s=2.0,
                downscale_delay_s=30.0,
                batch_size=10,
            ),
            read_lag=read_lag or self.read_lag,
            throughput=Throughput(completed=lambda: 0, clock=self.clock),
            hooks=self.hooks,
            interval_s=self.interval_s,
            gcs_address=lambda: None,
            capacity=cast(Any, self.capacity),
            clock=self.clock,
        )


async def test_a_growing_lag_resizes_the_pool_once_the_upscale_delay_passed() -> None:
    loop = _Loop()
    scaler = loop.autoscaler()
    await scaler.tick()
    assert loop.pool.target == 1
    loop.lag = 100  # 10 batches: the cap is max_workers
    await scaler.tick()
    assert loop.pool.target == 1 and scaler.state.proposal == 4
    loop.clock.advance(2.0)
    await scaler.tick()
    assert loop.pool.target == 4
    assert [desired for _, desired in loop.hooks.pool_states] == [1, 1, 4]


async def test_a_shrinking_lag_waits_out_the_downscale_delay() -> None:
    loop = _Loop(lag=100)
    scaler = loop.autoscaler()
    await scaler.tick()
    assert loop.pool.target == 4  # the first decision waits for nothing
    loop.lag = 0
    loop.clock.advance(29.0)
    await scaler.tick()
    assert loop.pool.target == 4
    loop.clock.advance(30.0)
    await scaler.tick()
    assert loop.pool.target == 1


async def test_a_failed_tick_or_capacity_request_does_not_stop_the_loop() -> None:
    loop = _Loop(lag=100, interval_s=0.001, lag_errors=[TimeoutError()])
    loop.capacity.errors.append(ConnectionError("GCS away"))  # the first request fails too
    scaler = loop.autoscaler()
    await scaler.start()
    assert loop.capacity.started
    await until(lambda: len(loop.capacity.requests) >= 2)
    await scaler.stop()
    assert loop.capacity.requests[:2] == [4, 4] and loop.capacity.withdrawn
    assert loop.pool.target == 4


async def test_stop_withdraws_the_share_once_and_survives_its_failure() -> None:
    loop = _Loop()
    scaler = loop.autoscaler()
    await scaler.start()
    await until(lambda: bool(loop.capacity.requests))
    loop.capacity.errors.append(ConnectionError("Ray gone"))
    await scaler.stop()
    await scaler.stop()  # safe twice: nothing more is sent
    assert not loop.capacity.withdrawn and loop.capacity.errors == []


async def test_the_loop_stops_when_stopped_as_a_lag_read_returns() -> None:
    """The loop reads the lag through the real lag reader, as the processor wires it; a stop
    lands in the step the broker's answer arrives in. The loop must end all the same (a
    shutdown waits for it) and withdraw its share."""
    loop = _Loop(interval_s=0.001)
    steps = Steps.build({TopicPartition("molecules", 0): molecules(5)})
    scaler = loop.autoscaler(read_lag=steps.pipeline.lag_reader.lag)
    await scaler.start()
    stopping: list[asyncio.Task[None]] = []

    def stop_now(call: str) -> None:
        if call == "end_offsets" and not stopping:
            stopping.append(asyncio.ensure_future(scaler.stop()))

    steps.consumer.answered = stop_now
    await until(lambda: bool(stopping))
    done, _ = await asyncio.wait(stopping, timeout=2.0)
    assert done, "the loop went on: its stop never returned"
    assert loop.capacity.withdrawn
