"""Issue 3 acceptance: nothing is lost to dead workers, poison molecules, bad records,
consumer crashes, shutdowns, rebalances or a frozen broker. Real broker, real Ray."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.hooks import Hooks
from consumer.pool.replica import ReplicaState
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import MOLECULE_CODEC, Molecule, Status
from tests.harness import (
    Counting,
    OutputWatcher,
    committed,
    consume_command,
    consumer_settings,
    publish,
    publish_raw,
    read_raw,
    synthetic_molecules,
    wait_until,
)
from tests.plugins import HANG_MARKER, KILL_MARKER, RAISE_MARKER

pytestmark = pytest.mark.integration


def settings_for(
    broker: EmbeddedBroker, cluster: LocalCluster, **overrides: object
) -> ConsumerSettings:
    defaults: dict[str, object] = {"min_workers": 1, "max_workers": 2, "group_id": "lost-test"}
    return consumer_settings(broker.bootstrap_servers, cluster.address, **{**defaults, **overrides})


async def test_poison_molecules_fail_alone_and_the_pool_survives(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node()
    good = synthetic_molecules(400)
    poison = [
        Molecule(id="kill-1", smiles=KILL_MARKER),
        Molecule(id="kill-2", smiles=KILL_MARKER),
        Molecule(id="raise-1", smiles=RAISE_MARKER),
    ]
    inputs = good[:100] + poison[:1] + good[100:250] + poison[1:] + good[250:]
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = settings_for(
        broker, ray_cluster, model="tests.plugins:KillerModel", batch_size=16, max_workers=2
    )
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings) as proc:
        await wait_until(lambda: len(out.ids) >= len(inputs), 240, "a prediction per input")
        assert proc.pool.counts(), "the pool still has workers"
    by_id = {p.id: p for p in out.predictions}
    for p in poison:
        assert by_id[p.id].status is Status.FAILED, by_id[p.id]
        assert by_id[p.id].error and by_id[p.id].attempts >= settings.max_attempts
    assert all(by_id[m.id].status is Status.OK for m in good)
    letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    assert sorted(r.key for r in letters) == sorted(p.id.encode() for p in poison)  # type: ignore[attr-defined]
    for record in letters:
        headers = dict(record.headers)  # type: ignore[attr-defined]
        assert headers["molstream.error.stage"] == b"model"
        assert int(headers["molstream.error.attempts"]) >= settings.max_attempts
        original = MOLECULE_CODEC.decode(record.value)  # type: ignore[attr-defined]
        assert original.smiles in (KILL_MARKER, RAISE_MARKER)


async def test_a_worker_that_hangs_is_killed_and_replaced(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node()
    good = synthetic_molecules(60)
    hung = Molecule(id="hang-1", smiles=HANG_MARKER)
    inputs = [*good[:30], hung, *good[30:]]
    await publish(broker.bootstrap_servers, "molecules", inputs)
    failures: list[str] = []

    class Failures(Hooks):
        def worker_failure(self, reason: str) -> None:
            failures.append(reason)

    settings = settings_for(
        broker,
        ray_cluster,
        model="tests.plugins:KillerModel",
        batch_size=4,
        max_attempts=2,
        batch_timeout_s=2,
    )
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        StreamProcessor(settings, hooks=Failures()) as proc,
    ):
        await wait_until(lambda: len(out.ids) >= len(inputs), 120, "a prediction per input")
        await wait_until(lambda: proc.pool.counts()[ReplicaState.READY] >= 1, 30, "a new worker")
    by_id = {p.id: p for p in out.predictions}
    assert by_id[hung.id].status is Status.FAILED
    assert "timeout" in (by_id[hung.id].error or "")
    assert all(by_id[m.id].status is Status.OK for m in good)
    # One try of the batch of 4 (a timeout splits it at once, in four), two of the molecule.
    assert failures.count("timeout") == 3, failures


async def test_undecodable_records_become_dead_letters_byte_for_byte(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    valid = synthetic_molecules(1000)
    good_value = MOLECULE_CODEC.encode(valid[0])
    bad_values: list[bytes | None] = [
        b"",  # empty
        b"\x01\x02not avro at all",  # wrong magic (0x00 would be Schema Registry framing)
        b"\xc3\x01" + b"\xff" * 8 + good_value[10:],  # unknown fingerprint
        good_value[:10] + b"\xff\xff\xff\xff\xff\xff",  # corrupt body
    ]
    bad = [
        (f"bad-{i}".encode(), bad_values[i % 4], [("origin", f"test-{i}".encode())])
        for i in range(200)
    ]
    raw: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]] = [
        (m.id.encode(), MOLECULE_CODEC.encode(m), []) for m in valid
    ]
    mixed = [r for pair in zip(raw[:200], bad, strict=True) for r in pair] + raw[200:]
    await publish_raw(broker.bootstrap_servers, "molecules", mixed)
    async with (
        OutputWatcher(broker.bootstrap_servers) as out,
        StreamProcessor(settings_for(broker, ray_cluster, max_workers=1)),
    ):
        await wait_until(lambda: out.total >= len(valid), 120, "1,000 predictions")
        letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    assert out.total == len(valid) and set(out.ids) == {m.id for m in valid}
    assert len(letters) == 200
    sent = {k: (v, h) for k, v, h in bad}
    reasons = set()
    for record in letters:
        value, headers = sent[record.key]  # type: ignore[attr-defined]
        assert (record.value or b"") == (value or b"")  # type: ignore[attr-defined]
        got = list(record.headers)  # type: ignore[attr-defined]
        assert got[: len(headers)] == headers, "original headers first, unchanged"
        extra = dict(got[len(headers) :])
        assert extra["molstream.error.stage"] == b"decode"
        assert extra["molstream.error.topic"] == b"molecules"
        assert int(extra["molstream.error.offset"]) >= 0
        assert extra["molstream.error.message"]
        reasons.add(extra["molstream.error.class"])
    assert reasons == {
        b"EmptyRecordError",
        b"BadMagicError",
        b"UnknownSchemaError",
        b"CorruptBodyError",
    }


async def test_a_node_lost_mid_stream_loses_nothing(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    nodes = [ray_cluster.add_spot_node() for _ in range(2)]
    inputs = synthetic_molecules(3000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = settings_for(broker, ray_cluster, model_option={"per_molecule_ms": "3"})
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings):
        await wait_until(lambda: out.total >= 300, 60, "progress")
        ray_cluster.remove_node(nodes[0], graceful=False)
        await wait_until(lambda: len(out.ids) >= len(inputs), 180, "every molecule")
    assert set(out.ids) == {m.id for m in inputs}


async def test_a_consumer_joining_and_leaving_loses_nothing(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node()
    # Enough work (about 40 s for one worker) that the second consumer, whose join takes
    # a rebalance of several seconds, still finds some.
    inputs = synthetic_molecules(12_000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    one = settings_for(broker, ray_cluster, max_workers=1, model_option={"per_molecule_ms": "3"})
    second_did = Counting()
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(one):
        await wait_until(lambda: out.total >= 300, 60, "first consumer works")
        async with StreamProcessor(one, hooks=second_did):
            await wait_until(lambda: second_did.molecules >= 500, 90, "second consumer works")
        remaining_at_leave = len(inputs) - len(out.ids)
        await wait_until(lambda: len(out.ids) >= len(inputs), 180, "every molecule")
    assert set(out.ids) == {m.id for m in inputs}
    assert remaining_at_leave > 0, "the first consumer took the rest over after the leave"


async def test_a_frozen_broker_loses_nothing_and_the_consumer_lives(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    inputs = synthetic_molecules(4000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    settings = settings_for(
        broker,
        ray_cluster,
        max_workers=1,
        model_option={"per_molecule_ms": "1"},
        broker_timeout_s=5,
    )
    async with OutputWatcher(broker.bootstrap_servers) as out, StreamProcessor(settings) as proc:
        await wait_until(lambda: out.total >= 300, 60, "progress before the freeze")
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(15)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        await wait_until(lambda: len(out.ids) >= len(inputs), 240, "every molecule")
        stop = asyncio.Event()
        runner = asyncio.create_task(proc.run_until(stop))
        await asyncio.sleep(0.5)
        assert not runner.done(), "the consumer's routines are alive"
        stop.set()
        await runner
    assert set(out.ids) == {m.id for m in inputs}


@contextmanager
def consumer_process(argv: list[str], log_path: str) -> Iterator[subprocess.Popen[bytes]]:
    """``molstream consume`` in a subprocess; killed by pid if the test leaves it running."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_kill_9_three_times_loses_nothing(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: object
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node()
    inputs = synthetic_molecules(10_000)
    await publish(broker.bootstrap_servers, "molecules", inputs)
    max_in_flight = 500
    argv = consume_command(
        broker.bootstrap_servers,
        ray_cluster.address,
        *("--model", "synthetic", "--model-option", "per_molecule_ms=1"),
        *("--max-in-flight", str(max_in_flight), "--max-workers", "2", "--batch-size", "32"),
        *("--commit-interval-s", "0.2", "--group-id", "kill-test"),
    )
    log = f"{tmp_path}/consumer.log"
    async with OutputWatcher(broker.bootstrap_servers) as out:
        for _ in range(3):
            target = out.total + 1000
            with consumer_process(argv, log) as proc:
                await wait_until(
                    lambda t=target: out.total >= t,  # type: ignore[misc]
                    120,
                    "progress, then kill -9",
                )
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        with consumer_process(argv, log) as proc:
            await wait_until(lambda: len(out.ids) >= len(inputs), 300, "every molecule")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
    assert set(out.ids) == {m.id for m in inputs}, "0 lost"
    assert out.duplicates() <= 3 * max_in_flight, out.duplicates()
    print(f"kill -9 x3: {len(out.ids)} ids, {out.duplicates()} duplicates")


async def test_sigterm_then_restart_has_no_duplicates(
    broker: EmbeddedBroker, ray_cluster: LocalCluster, tmp_path: object
) -> None:
    for _ in range(2):
        ray_cluster.add_spot_node()
    inputs = synthetic_molecules(6000)
    ends = await publish(broker.bootstrap_servers, "molecules", inputs)
    shutdown_timeout_s = 10
    argv = consume_command(
        broker.bootstrap_servers,
        ray_cluster.address,
        *("--model", "synthetic", "--model-option", "per_molecule_ms=1"),
        *("--max-workers", "2", "--shutdown-timeout-s", str(shutdown_timeout_s)),
        *("--group-id", "term-test"),
    )
    log = f"{tmp_path}/consumer.log"
    async with OutputWatcher(broker.bootstrap_servers) as out:
        with consumer_process(argv, log) as proc:
            await wait_until(lambda: out.total >= 1000, 120, "progress before SIGTERM")
            proc.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            code = await asyncio.to_thread(proc.wait, shutdown_timeout_s + 15)
            took = time.monotonic() - asked
        assert code == 0
        assert took < shutdown_timeout_s + 15
        with consumer_process(argv, log) as proc:
            await wait_until(lambda: len(out.ids) >= len(inputs), 300, "every molecule")
            # Every offset committed: no batch is left that could arrive twice.
            async with asyncio.timeout(60):
                while await committed(broker.bootstrap_servers, "term-test", ends) != ends:
                    await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 60) == 0
    assert set(out.ids) == {m.id for m in inputs}, "0 lost"
    assert out.duplicates() == 0
    print(f"SIGTERM to exit: {took:.2f} s")
