"""Chaos, run: broker, cluster, the consumer subprocess, the faults, the output watcher."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import runner
from bench.chaos.analyse import (
    CATCH_WINDOW_S,
    PRE_WINDOW_S,
    SAMPLE_S,
    Fault,
    Sample,
    catch_up,
    duplicate_runs,
    partition_progress,
    rate,
)
from bench.chaos.consumer_process import ConsumerProcess
from bench.chaos.render import console
from bench.chaos.result import summarise
from bench.chaos.watch import Watch
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import free_port
from consumer.dev.raycluster import LocalCluster
from schemas import Molecule, Status
from tests.harness import OutputWatcher, consume_command, publish, read_raw, synthetic_molecules

SETTLE_S = 3.0

SCHEDULE = ("consumer_kill", "node_loss", "broker_freeze", "consumer_kill", "node_loss")

DEFAULT_AT = (8.0, 18.0, 28.0, 38.0, 48.0)


class Chaos:
    """The run: broker, cluster, consumer subprocess, output watcher, faults."""

    def __init__(self, args: argparse.Namespace, broker: EmbeddedBroker, cluster: LocalCluster):
        self.args = args
        self.broker = broker
        self.cluster = cluster
        self.goal = args.molecules
        self.watch: Watch | None = None
        self.faults: list[Fault] = []
        self.anomalies: list[dict[str, Any]] = []
        self.t0 = 0.0
        self.wall_t0 = 0.0
        self.duplicate_detail: dict[str, Any] = {}
        self.partitions: dict[str, dict[str, Any]] = {}
        self.frozen = False
        self.started_at = ""
        self.publish_s = 0.0
        argv = consume_command(
            broker.bootstrap_servers,
            cluster.address,
            *("--model", "synthetic"),
            *("--model-option", f"per_molecule_ms={args.per_molecule_ms:g}"),
            *("--min-workers", str(args.nodes), "--max-workers", str(args.nodes)),
            *("--max-in-flight", str(args.max_in_flight), "--batch-size", str(args.batch_size)),
            *("--commit-interval-s", str(args.commit_interval_s)),
            *("--shutdown-timeout-s", str(args.shutdown_timeout_s)),
            *("--group-id", "chaos"),
        )
        log_path = Path(args.log_dir) / "consumer.log"
        self.consumer = ConsumerProcess(argv, log_path, args.shutdown_timeout_s)
        self.argv, self.log_path, self.pids = argv, log_path, self.consumer.pids

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def samples(self) -> list[Sample]:
        return self.watch.samples if self.watch else []

    @property
    def distinct(self) -> int:
        samples = self.samples
        return samples[-1].distinct if samples else 0

    # -- faults ----------------------------------------------------------------------------

    def _new_fault(self, kind: str, threshold: float) -> Fault:
        s = self.samples[-1]
        t = self.now()
        pre = rate(self.samples, t - PRE_WINDOW_S, t)
        fault = Fault(
            kind=kind,
            threshold_pct=threshold,
            t_s=round(t, 3),
            progress_pct=round(100 * s.distinct / self.goal, 2),
            distinct_at=s.distinct,
            total_at=s.total,
            pre_rate_per_s=None if pre is None else round(pre, 1),
        )
        self.faults.append(fault)
        console.log(f"fault {len(self.faults)}: {kind} at {fault.progress_pct:.1f}% (t={t:.1f} s)")
        return fault

    def consumer_kill(self, fault: Fault) -> None:
        fault.detail.update(self.consumer.kill9())
        self.consumer.start()
        fault.detail["new_pid"] = self.consumer.pid

    def node_loss(self, fault: Fault) -> None:
        node = self.cluster.spot_nodes[0]
        fault.detail["removed_node"] = getattr(node, "node_id", None)
        started = time.monotonic()
        self.cluster.remove_node(node, graceful=False)
        fault.detail["remove_took_s"] = round(time.monotonic() - started, 2)
        time.sleep(self.args.node_replace_delay_s)
        started = time.monotonic()
        added = self.cluster.add_spot_node()  # main thread only (Ray installs signal handlers)
        fault.detail["add_took_s"] = round(time.monotonic() - started, 2)
        fault.detail["added_node"] = getattr(added, "node_id", None)

    def broker_freeze(self, fault: Fault) -> None:
        pid = self.broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        self.frozen = True
        try:
            time.sleep(self.args.freeze_s)
        finally:
            os.kill(pid, signal.SIGCONT)
            self.frozen = False
        fault.detail["frozen_s"] = self.args.freeze_s

    def inject(self, kind: str, threshold: float) -> None:
        fault = self._new_fault(kind, threshold)
        getattr(self, kind)(fault)
        fault.restored_t_s = round(self.now(), 3)

    def update_catch_up(self, fault: Fault) -> None:
        if fault.pre_rate_per_s is None or fault.catch_up_s is not None:
            return
        if fault.restored_t_s is None:
            return
        found = catch_up(
            list(self.samples), fault.t_s, fault.restored_t_s, fault.pre_rate_per_s, self.goal
        )
        if found is not None:
            fault.catch_up_s = round(found[0], 2)
            fault.stream_ended_first = found[1]
            fault.catch_up_after_restore_s = round(fault.t_s + found[0] - fault.restored_t_s, 2)

    def ready_for_next(self) -> bool:
        """The previous fault has caught up PRE_WINDOW_S ago (or its wait ran out)."""
        now = self.now()
        if not self.faults:
            first = next((s.t for s in self.samples if s.distinct > 0), None)
            return first is not None and now - first >= 2 * PRE_WINDOW_S
        last = self.faults[-1]
        assert last.restored_t_s is not None
        if last.catch_up_s is not None:
            return now >= last.t_s + last.catch_up_s + CATCH_WINDOW_S + PRE_WINDOW_S
        return bool(now - last.restored_t_s > self.args.fault_wait_s)

    # -- the run ---------------------------------------------------------------------------

    def run(self, molecules: list[Molecule]) -> dict[str, Any]:
        schedule = list(zip(SCHEDULE, self.args.at, strict=True))
        self.t0 = time.monotonic()
        self.wall_t0 = time.time()
        self.watch = watch = Watch(self.broker.bootstrap_servers, self.t0)
        watch.start()
        assert watch.out is not None
        out = watch.out
        self.consumer.start()
        try:
            done_at = self._drive(watch, schedule)
            self._settle(out)
            for fault in self.faults:
                self.update_catch_up(fault)
            console.log("SIGTERM to the consumer")
            shutdown = self.consumer.stop()
            time.sleep(2)  # anything produced during shutdown
        finally:
            watch.stop()
            self.consumer.kill()
        return self._result(out, molecules, done_at, shutdown, schedule)

    def _drive(self, watch: Watch, schedule: list[tuple[str, float]]) -> float | None:
        """Until every molecule is predicted (when that was) or the timeout (None): the
        consumer restarted if it exits, each fault of ``schedule`` injected in its turn."""
        while self.now() < self.args.timeout_s:
            time.sleep(SAMPLE_S)
            if not watch.alive:
                raise RuntimeError(f"output watcher stopped: {watch.error!r}")
            code = self.consumer.poll()
            if code is not None:
                self.anomalies.append(
                    {"t_s": round(self.now(), 2), "event": "consumer exited", "code": code}
                )
                console.log(f"[red]consumer exited by itself ({code}); restarting")
                self.consumer.start()
            for fault in self.faults:
                self.update_catch_up(fault)
            if self.distinct >= self.goal:
                return next(s.t for s in self.samples if s.distinct >= self.goal)
            if schedule:
                kind, at = schedule[0]
                progress = 100 * self.distinct / self.goal
                if progress >= at and self.ready_for_next():
                    schedule.pop(0)
                    self.inject(kind, at)
        return None

    def _settle(self, out: OutputWatcher) -> None:
        """Let late duplicates arrive: until nothing new for SETTLE_S (bounded)."""
        settle_deadline = self.now() + 30
        last_total, last_change = out.total, self.now()
        while self.now() - last_change < SETTLE_S and self.now() < settle_deadline:
            time.sleep(SAMPLE_S)
            if out.total != last_total:
                last_total, last_change = out.total, self.now()

    def _result(
        self,
        out: OutputWatcher,
        molecules: list[Molecule],
        done_at: float | None,
        shutdown: dict[str, Any],
        not_injected: list[tuple[str, float]],
    ) -> dict[str, Any]:
        counts = Counter(out.ids)
        self.duplicate_detail = duplicate_runs(out.predictions, self.wall_t0)
        self.partitions = partition_progress(out.predictions, self.wall_t0)
        failed = sum(1 for p in out.predictions if p.status is Status.FAILED)
        invalid = sum(1 for p in out.predictions if p.status is Status.INVALID_INPUT)
        letters = asyncio.run(read_raw(self.broker.bootstrap_servers, self.args.dlq_topic))
        return summarise(
            self, molecules, counts, failed, invalid, len(letters), done_at, shutdown, not_injected
        )


def bench(args: argparse.Namespace) -> dict[str, Any]:
    mols = synthetic_molecules(args.molecules, prefix="c")
    broker_log = Path(args.log_dir) / "broker.log"
    head_args = {"dashboard_agent_listen_port": free_port()}
    with runner.broker_and_cluster(broker_log=broker_log, head_args=head_args) as (broker, cl):
        chaos = Chaos(args, broker, cl)
        frozen_guard = broker.pid
        try:
            chaos.started_at = datetime.now(UTC).isoformat()
            console.log(f"broker {broker.bootstrap_servers}, Ray {cl.address}; adding nodes")
            for _ in range(args.nodes):
                cl.add_spot_node()
            console.log(f"publishing {len(mols):,} molecules")
            started = time.monotonic()
            asyncio.run(publish(broker.bootstrap_servers, "molecules", mols))
            chaos.publish_s = round(time.monotonic() - started, 2)
            console.log(f"published in {chaos.publish_s} s; starting the consumer")
            return chaos.run(mols)
        finally:
            if chaos.frozen and frozen_guard is not None:
                os.kill(frozen_guard, signal.SIGCONT)
            chaos.consumer.kill()
