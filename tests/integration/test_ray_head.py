"""A slow Ray head is not a lost one: a big pool starting on a busy head keeps the consumer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import HOST, free_port
from consumer.dev.raycluster import LocalCluster
from consumer.errors import RayLostError
from consumer.pool.ray_watchdog import HeadErrorKind, RayWatchdog
from tests.harness import (
    OutputWatcher,
    connected_cluster,
    consume_command,
    publish,
    synthetic_molecules,
    wait_until,
)
from tests.integration.test_nothing_lost import consumer_process

pytestmark = pytest.mark.integration

WORKERS = 128


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as response:
        return str(response.read().decode())


def _samples(port: int) -> dict[tuple[str, str], float]:
    """(sample name, its one label value or "") -> value, from the consumer's /metrics."""
    text = _get(port, "/metrics")
    return {
        (s.name, next(iter(s.labels.values()), "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.timeout(1500)
async def test_128_workers_starting_do_not_make_the_consumer_exit(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    # One node that holds the whole pool with default --worker-num-cpus: 128 actor processes
    # started by one raylet on this machine's few cores, the head's GCS as busy as it gets.
    ray_cluster.add_spot_node(num_cpus=WORKERS, spot=WORKERS)
    inputs = synthetic_molecules(2000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    port = free_port()
    argv = consume_command(
        broker.bootstrap_servers,
        ray_cluster.address,
        *("--model", "synthetic", "--metrics-port", str(port)),
        *("--min-workers", str(WORKERS), "--max-workers", str(WORKERS)),
    )
    samples: dict[tuple[str, str], float] = {}

    async def workers_up() -> float:
        nonlocal samples
        try:
            samples = await asyncio.to_thread(_samples, port)
        except OSError:
            return 0
        pool = "molstream_pool_workers"
        return samples.get((pool, "ready"), 0) + samples.get((pool, "busy"), 0)

    async with OutputWatcher(broker.bootstrap_servers) as out:
        with consumer_process(argv, str(tmp_path / "consumer.log")) as proc:
            started = time.monotonic()
            # Bounded, and generous: a clean 2-core machine starts them in about a minute,
            # one shared with other tests several times slower.
            deadline = started + 900
            while (up := await workers_up()) < WORKERS:
                assert proc.poll() is None, f"consumer exited ({proc.returncode}) at {up:g} up"
                assert time.monotonic() < deadline, f"only {up:g} of {WORKERS} workers up"
                await asyncio.sleep(1)
            ready_s = time.monotonic() - started
            while len(out.ids) < len(inputs):
                assert proc.poll() is None, f"consumer exited ({proc.returncode})"
                assert time.monotonic() < deadline, f"{len(out.ids)} of {len(inputs)} predicted"
                await asyncio.sleep(0.5)
            assert await workers_up() == WORKERS  # and the latest samples, for the report
            errors = {
                k: samples.get(("molstream_ray_head_errors_total", k))
                for k in ("slow", "unreachable")
            }
            ready = json.loads(await asyncio.to_thread(_get, port, "/readyz"))
            assert ready["ray_head"] in ("ok", "slow"), ready
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 300)
    assert code == 0, code
    assert set(out.ids) == {m.id for m in inputs}
    print(f"{WORKERS} workers up in {ready_s:.0f} s; Ray head probes: {errors}; /readyz {ready}")


async def test_a_stopped_gcs_is_slow_and_lost_only_after_the_whole_timeout() -> None:
    # SIGSTOP keeps the GCS's sockets open: to Ray's client it is a head that does not answer
    # in time ("Deadline Exceeded"), not a refused one. Here, ours is stopped longer than a
    # refused head is given (half the timeout), and then longer than the whole timeout.
    timeout_s = 12.0
    with connected_cluster(0) as cluster:
        gcs = cluster.gcs_pid()
        errors: list[HeadErrorKind] = []
        watchdog = RayWatchdog(timeout_s=timeout_s, on_error=errors.append)
        task = asyncio.create_task(watchdog.watch())
        try:
            os.kill(gcs, signal.SIGSTOP)
            try:
                await wait_until(lambda: watchdog.state == "slow", timeout_s, "a slow probe")
                # The duration is what is tested: longer than a refused head is given.
                await asyncio.sleep(watchdog.unreachable_limit_s)
                assert not task.done() and errors and set(errors) == {"slow"}, errors
            finally:
                os.kill(gcs, signal.SIGCONT)
            await wait_until(lambda: watchdog.state == "ok", timeout_s, "answers again")
            assert not task.done()
            os.kill(gcs, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                with pytest.raises(RayLostError):
                    await asyncio.wait_for(task, timeout_s * 2)
            finally:
                os.kill(gcs, signal.SIGCONT)
            took = time.monotonic() - stopped
            assert timeout_s - watchdog.unreachable_limit_s < took < timeout_s * 1.5, took
        finally:
            task.cancel()
