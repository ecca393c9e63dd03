"""Issue 20 acceptance: dead letters go back once their cause is fixed (real broker, real
Ray, ``molstream redrive`` as a user runs it)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from typing import Any

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import SPOT_RESOURCE, LocalCluster
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings
from schemas import Molecule, Status
from tests.harness import Counting, publish, read_all, read_raw, wait_until

pytestmark = pytest.mark.integration

CHLORINE = [Molecule(f"cl-{i}", "C" * (i % 5 + 1) + "Cl") for i in range(40)]
PLAIN = [Molecule(f"m-{i}", "C" * (i % 7 + 1) + "O") for i in range(160)]


async def _molstream(*args: str) -> list[str]:
    """A molstream command's standard output lines (it must succeed)."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "consumer.cli", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


async def _redrive(bootstrap: str, *args: str) -> dict[str, Any]:
    lines = await _molstream(
        "redrive", "--bootstrap-servers", bootstrap, "--json", "--timeout-s", "5", *args
    )
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def _settings(broker: EmbeddedBroker, cluster: LocalCluster, fixed: str) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap_servers=broker.bootstrap_servers,
        ray_address=cluster.address,
        worker_resources={SPOT_RESOURCE: 1},
        model="tests.plugins:ChlorineBugModel",
        model_option={"fixed": fixed},
        min_workers=1,
        max_workers=1,
        max_attempts=1,
        batch_size=8,
        group_id="redrive-test",
        commit_interval_s=0.2,
    )


async def test_fixed_model_then_redrive_predicts_every_failed_molecule_once(
    broker: EmbeddedBroker, ray_cluster: LocalCluster
) -> None:
    ray_cluster.add_spot_node()
    ends = await publish(broker.bootstrap_servers, "molecules", [*PLAIN, *CHLORINE])
    async with StreamProcessor(_settings(broker, ray_cluster, "no"), hooks=Counting()) as bug:
        await wait_until(lambda: bug.committed == ends, 180, "the buggy run reaches the end")
    first = await read_all(broker.bootstrap_servers, "predictions")
    assert {p.id for p in first if p.status is Status.FAILED} == {m.id for m in CHLORINE}
    letters = await read_raw(broker.bootstrap_servers, "molecules.dlq")
    stages = Counter(dict(r.headers)["molstream.error.stage"] for r in letters)  # type: ignore[attr-defined]
    assert stages == {b"model": len(CHLORINE)}

    bootstrap = ("--bootstrap-servers", broker.bootstrap_servers, "--timeout-s", "2")
    failed = await _molstream("results", *bootstrap, "--status", "FAILED")
    assert sorted(json.loads(line)["id"] for line in failed) == sorted(m.id for m in CHLORINE)
    one = await _molstream("results", *bootstrap, "--id", "m-3", "--max", "1")
    assert [json.loads(line)["id"] for line in one] == ["m-3"]

    dry = await _redrive(broker.bootstrap_servers, "--dry-run", "--stage", "model")
    assert dry["redriven"] == len(CHLORINE)  # the command has exited: nothing more to come
    assert len(await read_raw(broker.bootstrap_servers, "molecules")) == len(PLAIN) + len(CHLORINE)

    hooks = Counting()
    async with StreamProcessor(_settings(broker, ray_cluster, "yes"), hooks=hooks):
        summary = await _redrive(broker.bootstrap_servers, "--stage", "model")
        assert summary["redriven"] == len(CHLORINE)
        assert summary["by_stage_and_class"] == [
            {"stage": "model", "class": "BatchFailedError", "count": len(CHLORINE)}
        ]
        await wait_until(lambda: hooks.predictions >= len(CHLORINE), 120, "redriven predicted")
        again = await _redrive(broker.bootstrap_servers)
        assert again["redriven"] == 0 and again["skipped_by_filter"] == 0

    predictions = await read_all(broker.bootstrap_servers, "predictions")
    by_id = Counter(p.id for p in predictions)
    assert all(by_id[m.id] == 1 for m in PLAIN), "no other molecule is predicted twice"
    redone = [p for p in predictions if p.id.startswith("cl-") and p.status is Status.OK]
    assert sorted(p.id for p in redone) == sorted(m.id for m in CHLORINE)
    assert hooks.predictions == len(CHLORINE)
