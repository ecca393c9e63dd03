"""Chaos: one long run through ``molstream consume`` with faults injected while it works.

Run: ``.venv/bin/python -m bench.chaos [--molecules 50000] [--out bench/results]``.
Prints a table, writes ``chaos.json`` (and ``chaos.png``) and exits non-zero if a molecule was
lost (1) or another check failed (2): a fault not injected, the consumer not exiting 0 within
its shutdown timeout after SIGTERM, or the run not finishing in time.

Set-up: an embedded broker, a local Ray cluster with ``--nodes`` one-CPU Spot nodes, every
molecule published (acknowledged) before the first consumer starts, then ``molstream consume``
as a subprocess (synthetic model, ``per_molecule_ms``, ``--min-workers = --max-workers =
--nodes`` so the autoscaler does not blur the recovery, ``--max-in-flight 1000``,
``--batch-size 64``, ``--commit-interval-s 0.5``). The bench reads the output topic from the
beginning in the background.

Faults, in this order, each triggered by progress (``--at``, % of the molecules predicted):

- ``consumer_kill``: SIGKILL of the consumer process, reaped, then a new one started at once;
- ``node_loss``: a Spot node (the oldest) removed hard, ``--node-replace-delay-s`` later a new
  one added;
- ``broker_freeze``: SIGSTOP of the broker, ``--freeze-s`` (15 s) later SIGCONT.

Definitions (all times are ``time.monotonic()`` seconds from the first consumer start):

- progress, ``distinct(t)``: distinct molecule ids seen on the output topic by time ``t``;
  duplicates are not progress. The bench samples ``distinct`` and the prediction count
  (duplicates included) every ``SAMPLE_S`` = 0.2 s.
- ``rate(a, b)``: ``(distinct(s_b) - distinct(s_a)) / (s_b - s_a)`` where ``s_a``/``s_b`` are
  the last samples taken at or before ``a``/``b``.
- pre-fault rate of a fault at ``t_f``: ``r0 = rate(t_f - PRE_WINDOW_S, t_f)``, with
  ``PRE_WINDOW_S`` = 1.5 s.
- restore time ``t_r``: when the bench finished undoing the fault (new consumer started, new
  node added, SIGCONT sent).
- catch-up point ``c``: the first sample time ``c >= t_r`` such that
  ``rate(c, c + CATCH_WINDOW_S) >= 0.8 * r0`` (``CATCH_WINDOW_S`` = 2 s; if the stream ends
  inside the window, its rate is taken up to the last new id). In words: from ``c`` on, new
  ids arrived for 2 s at >= 80% of the pre-fault rate.
  ``catch_up_s = c - t_f`` (the fault itself included: the 15 s of a freeze, the replacement
  delay of a node) and ``catch_up_after_restore_s = c - t_r``.
  Why after ``t_r`` and 2 s: the effect of a fault shows late (Ray declares a node dead after
  ~3 s of missed health checks; predictions already produced are still being read) and a
  stall ends with a burst (up to ``--max-in-flight`` finished predictions flushed at once),
  either of which fools a short window that may start during the fault.
  If every id is predicted before such a window, ``c`` is the time of the last id and the
  fault is flagged ``stream_ended_first``. Resolution: the sampling interval (~0.2-0.4 s).
- a fault fires when progress passes its threshold *and* the previous fault's catch-up window
  ended ``PRE_WINDOW_S`` before (so ``r0`` is never measured during a recovery), or its
  catch-up wait (``--fault-wait-s``) ran out; the first one waits for ``2 * PRE_WINDOW_S`` of
  predictions. The thresholds are lower bounds: the progress actually reached is reported.
- duplicates: for each id predicted n > 1 times, n - 1; the histogram counts ids by n.
  ``duplicates_caused`` of a fault counts the duplicated ids whose first copy was produced
  (``produced_at``) after the previous fault and before this one: work done, not committed,
  and done again because of it. ``duplicates_seen_until_next`` is the growth of duplicates on
  the output topic from the fault to the next one (or the end): *when* they arrived, which
  can be long after the fault if the restarted consumer reaches that partition late.
  ``partition_progress`` shows, per input partition, first predictions per 5 s.
  ``duplicate_runs`` groups the duplicated ids by input partition and contiguous offsets,
  with when (seconds, from the predictions' ``produced_at``) and by which worker each copy was
  made: copies with the same worker and ``produced_at`` are one prediction delivered twice (a
  producer retry), others are the molecule predicted again.
- overall molecules/s: molecules published / time from the first consumer start to the last
  new id. Wall time: the whole bench, set-up and tear-down included.

At the end the bench waits until no prediction arrived for ``SETTLE_S`` (late duplicates),
sends SIGTERM and checks the consumer exits 0 within its ``--shutdown-timeout-s``, then reads
the dead-letter topic. Every wait is bounded (``--timeout-s`` for the stream as a whole).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.harness import OutputWatcher, consume_command, publish, read_raw
from consumer.dev.broker import EmbeddedBroker
from consumer.dev.localserver import free_port
from consumer.dev.raycluster import LocalCluster
from schemas import Molecule, Prediction, Status

SAMPLE_S = 0.2
PRE_WINDOW_S = 1.5
CATCH_WINDOW_S = 2.0
CATCH_FRACTION = 0.8
SETTLE_S = 3.0
SCHEDULE = ("consumer_kill", "node_loss", "broker_freeze", "consumer_kill", "node_loss")
DEFAULT_AT = (8.0, 18.0, 28.0, 38.0, 48.0)

console = Console(width=None if sys.stdout.isatty() else 140)


@dataclass(frozen=True, slots=True)
class Sample:
    """What the output topic held at one moment."""

    t: float
    distinct: int
    total: int


@dataclass
class Fault:
    """One injected fault and what it cost."""

    kind: str
    threshold_pct: float
    t_s: float
    progress_pct: float
    distinct_at: int
    total_at: int
    restored_t_s: float | None = None
    pre_rate_per_s: float | None = None
    catch_up_s: float | None = None
    catch_up_after_restore_s: float | None = None
    stream_ended_first: bool = False
    duplicates_caused: int | None = None
    duplicates_seen_until_next: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def count_at(samples: list[Sample], t: float) -> Sample | None:
    """The last sample taken at or before ``t``."""
    lo, hi = 0, len(samples)
    while lo < hi:
        mid = (lo + hi) // 2
        if samples[mid].t <= t:
            lo = mid + 1
        else:
            hi = mid
    return samples[lo - 1] if lo else None


def rate(samples: list[Sample], a: float, b: float) -> float | None:
    """New distinct ids per second between the samples at ``a`` and ``b``."""
    sa, sb = count_at(samples, a), count_at(samples, b)
    if sa is None or sb is None or sb.t <= sa.t:
        return None
    return (sb.distinct - sa.distinct) / (sb.t - sa.t)


def catch_up(
    samples: list[Sample], t_f: float, t_r: float, r0: float, goal: int
) -> tuple[float, bool] | None:
    """(catch-up point - t_f, stream ended first) of a fault, or None if not known yet."""
    if not samples:
        return None
    last = samples[-1]
    for s in samples:
        if s.t < t_r:
            continue
        if s.distinct >= goal:
            return s.t - t_f, True
        if s.t + CATCH_WINDOW_S > last.t:
            return None  # the window is not over yet
        end = count_at(samples, s.t + CATCH_WINDOW_S)
        assert end is not None
        if end.distinct >= goal:
            end = next(x for x in samples if x.distinct >= goal)
        if end.t > s.t and (end.distinct - s.distinct) / (end.t - s.t) >= CATCH_FRACTION * r0:
            return s.t - t_f, False
    return None


def duplicate_runs(predictions: list[Prediction], wall_t0: float) -> dict[str, Any]:
    """Duplicated ids grouped by input partition and contiguous offsets (see the docstring)."""
    by_id: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        by_id[p.id].append(p)
    dups = sorted(
        (sorted(ps, key=lambda p: p.produced_at) for ps in by_id.values() if len(ps) > 1),
        key=lambda ps: (ps[0].source_partition, ps[0].source_offset),
    )
    same = sum(1 for ps in dups if len({(p.worker, p.produced_at) for p in ps}) == 1)
    runs: list[dict[str, Any]] = []
    for ps in dups:
        part, off = ps[0].source_partition, ps[0].source_offset
        times = [round(p.produced_at.timestamp() - wall_t0, 1) for p in ps]
        identical = len({(p.worker, p.produced_at) for p in ps}) == 1
        run = runs[-1] if runs else None
        if not (run and run["partition"] == part and off == run["_last"] + 1):
            run = {
                "partition": part,
                "_first": off,
                "_last": off,
                "ids": 0,
                "identical_copies": 0,
                "first_copy_t_s": [times[0], times[0]],
                "second_copy_t_s": [times[1], times[1]],
                "workers": [],
            }
            runs.append(run)
        run["_last"] = off
        run["ids"] += 1
        run["identical_copies"] += identical
        for key, t in zip(("first_copy_t_s", "second_copy_t_s"), times, strict=False):
            run[key] = [min(run[key][0], t), max(run[key][1], t)]
        run["workers"] = sorted(set(run["workers"]) | {p.worker for p in ps})
    for run in runs:
        run["offsets"] = f"{run.pop('_first')}-{run.pop('_last')}"
    return {
        "ids_with_identical_copies": same,
        "runs": runs[:60],
        "runs_total": len(runs),
        "_first_copy_t": [ps[0].produced_at.timestamp() - wall_t0 for ps in dups],
    }


def partition_progress(
    predictions: list[Prediction], wall_t0: float, bucket_s: float = 5.0
) -> dict[str, dict[str, Any]]:
    """Per input partition: first predictions of ids per ``bucket_s`` (by ``produced_at``)."""
    seen: set[str] = set()
    per: dict[int, Counter[int]] = defaultdict(Counter)
    for p in sorted(predictions, key=lambda p: p.produced_at):
        if p.id in seen:
            continue
        seen.add(p.id)
        per[p.source_partition][int((p.produced_at.timestamp() - wall_t0) // bucket_s)] += 1
    out: dict[str, dict[str, Any]] = {}
    for part in sorted(per):
        buckets = per[part]
        last = max(buckets)
        out[str(part)] = {
            "ids": sum(buckets.values()),
            "bucket_s": bucket_s,
            "per_bucket": [buckets.get(b, 0) for b in range(last + 1)],
        }
    return out


class Watch:
    """The output topic read in a thread of its own (its own event loop), sampled every
    ``SAMPLE_S``: the main thread may block (Ray adds nodes from the main thread only)."""

    def __init__(self, bootstrap: str, t0: float) -> None:
        self._bootstrap = bootstrap
        self._t0 = t0
        self.samples: list[Sample] = []
        self.out: OutputWatcher | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="output-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("output watcher did not start")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the main thread
            self.error = exc

    async def _main(self) -> None:
        async with OutputWatcher(self._bootstrap) as out:
            self.out = out
            self._ready.set()
            while not self._stop.is_set():
                task = out._task
                if task is not None and task.done():
                    raise RuntimeError(f"output watcher died: {task.exception()!r}")
                self.samples.append(Sample(time.monotonic() - self._t0, len(out.ids), out.total))
                await asyncio.sleep(SAMPLE_S)


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
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []
        self.t0 = 0.0
        self.wall_t0 = 0.0
        self.duplicate_detail: dict[str, Any] = {}
        self.partitions: dict[str, dict[str, Any]] = {}
        self.frozen = False
        self.started_at = ""
        self.publish_s = 0.0
        self.log_path = Path(args.log_dir) / "consumer.log"
        self.argv = consume_command(
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

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def samples(self) -> list[Sample]:
        return self.watch.samples if self.watch else []

    @property
    def distinct(self) -> int:
        samples = self.samples
        return samples[-1].distinct if samples else 0

    # -- consumer process ------------------------------------------------------------------

    def start_consumer(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        self.pids.append(self.proc.pid)

    @staticmethod
    def reap(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
        """Wait (bounded) for ``proc`` to exit; None if it did not."""
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

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
        assert self.proc is not None
        proc = self.proc
        proc.send_signal(signal.SIGKILL)
        code = self.reap(proc, 10)
        fault.detail.update(pid=proc.pid, exit_code=code)
        self.start_consumer()
        assert self.proc is not None
        fault.detail["new_pid"] = self.proc.pid

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
        self.start_consumer()
        done_at: float | None = None
        try:
            while self.now() < self.args.timeout_s:
                time.sleep(SAMPLE_S)
                if not watch.alive:
                    raise RuntimeError(f"output watcher stopped: {watch.error!r}")
                assert self.proc is not None
                code = self.proc.poll()
                if code is not None:
                    self.anomalies.append(
                        {"t_s": round(self.now(), 2), "event": "consumer exited", "code": code}
                    )
                    console.log(f"[red]consumer exited by itself ({code}); restarting")
                    self.start_consumer()
                for fault in self.faults:
                    self.update_catch_up(fault)
                if self.distinct >= self.goal:
                    done_at = next(s.t for s in self.samples if s.distinct >= self.goal)
                    break
                if schedule:
                    kind, at = schedule[0]
                    progress = 100 * self.distinct / self.goal
                    if progress >= at and self.ready_for_next():
                        schedule.pop(0)
                        self.inject(kind, at)
            # Let late duplicates arrive: until nothing new for SETTLE_S (bounded).
            settle_deadline = self.now() + 30
            last_total, last_change = out.total, self.now()
            while self.now() - last_change < SETTLE_S and self.now() < settle_deadline:
                time.sleep(SAMPLE_S)
                if out.total != last_total:
                    last_total, last_change = out.total, self.now()
            for fault in self.faults:
                self.update_catch_up(fault)
            console.log("SIGTERM to the consumer")
            shutdown = self.stop_consumer()
            time.sleep(2)  # anything produced during shutdown
        finally:
            watch.stop()
            self.kill_consumer()
        counts = Counter(out.ids)
        self.duplicate_detail = duplicate_runs(out.predictions, self.wall_t0)
        self.partitions = partition_progress(out.predictions, self.wall_t0)
        failed = sum(1 for p in out.predictions if p.status is Status.FAILED)
        invalid = sum(1 for p in out.predictions if p.status is Status.INVALID_INPUT)
        letters = asyncio.run(read_raw(self.broker.bootstrap_servers, self.args.dlq_topic))
        return self.summarise(
            molecules, counts, failed, invalid, len(letters), done_at, shutdown, schedule
        )

    def stop_consumer(self) -> dict[str, Any]:
        """SIGTERM, then wait up to the shutdown timeout + 15 s; report code and time."""
        assert self.proc is not None
        proc = self.proc
        proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        code = self.reap(proc, self.args.shutdown_timeout_s + 15)
        took = time.monotonic() - asked
        return {
            "pid": proc.pid,
            "exit_code": code,
            "took_s": round(took, 2),
            "shutdown_timeout_s": self.args.shutdown_timeout_s,
            "ok": code == 0 and took <= self.args.shutdown_timeout_s,
        }

    def kill_consumer(self) -> None:
        """Kill our consumer by pid if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def summarise(
        self,
        molecules: list[Molecule],
        counts: Counter[str],
        failed: int,
        invalid: int,
        dead_letters: int,
        done_at: float | None,
        shutdown: dict[str, Any],
        not_injected: list[tuple[str, float]],
    ) -> dict[str, Any]:
        published = {m.id for m in molecules}
        lost = len(published - set(counts))
        histogram = Counter(n for n in counts.values() if n > 1)
        duplicates = sum(n - 1 for n in counts.values())
        end_dup = self.samples[-1].total - self.samples[-1].distinct if self.samples else 0
        firsts = self.duplicate_detail.get("_first_copy_t", [])
        previous = float("-inf")
        for i, fault in enumerate(self.faults):
            nxt = self.faults[i + 1] if i + 1 < len(self.faults) else None
            until = (nxt.total_at - nxt.distinct_at) if nxt else end_dup
            fault.duplicates_seen_until_next = until - (fault.total_at - fault.distinct_at)
            fault.duplicates_caused = sum(1 for t in firsts if previous < t <= fault.t_s)
            previous = fault.t_s
        self.duplicate_detail["first_copy_after_last_fault"] = sum(
            1 for t in firsts if t > previous
        )
        self.duplicate_detail.pop("_first_copy_t", None)
        pre_rates = [f.pre_rate_per_s for f in self.faults if f.pre_rate_per_s]
        stream_s = done_at
        checks = {
            "nothing_lost": lost == 0,
            "every_fault_injected": not not_injected,
            "finished_in_time": done_at is not None,
            "consumer_exited_0_in_time": bool(shutdown["ok"]),
        }
        return {
            "started_at": self.started_at,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "config": {
                "molecules": self.args.molecules,
                "nodes": self.args.nodes,
                "per_molecule_ms": self.args.per_molecule_ms,
                "max_in_flight": self.args.max_in_flight,
                "batch_size": self.args.batch_size,
                "commit_interval_s": self.args.commit_interval_s,
                "shutdown_timeout_s": self.args.shutdown_timeout_s,
                "freeze_s": self.args.freeze_s,
                "node_replace_delay_s": self.args.node_replace_delay_s,
                "fault_thresholds_pct": list(self.args.at),
                "consumer_argv": self.argv[1:],
            },
            "published": len(published),
            "distinct_predicted": len(counts),
            "predictions_total": sum(counts.values()),
            "lost": lost,
            "duplicates": duplicates,
            "duplicate_histogram": {str(k): v for k, v in sorted(histogram.items())},
            "duplicate_runs": self.duplicate_detail,
            "partition_progress": self.partitions,
            "dead_letters": dead_letters,
            "failed_predictions": failed,
            "invalid_input_predictions": invalid,
            "faults": [asdict(f) for f in self.faults],
            "faults_not_injected": [k for k, _ in not_injected],
            "anomalies": self.anomalies,
            "consumer_pids": self.pids,
            "final_shutdown": shutdown,
            "stream_s": None if stream_s is None else round(stream_s, 2),
            "molecules_per_s_overall": round(len(published) / stream_s, 1) if stream_s else None,
            "molecules_per_s_pre_fault_median": (
                round(sorted(pre_rates)[len(pre_rates) // 2], 1) if pre_rates else None
            ),
            "publish_s": self.publish_s,
            "consumer_log": str(self.log_path),
            "log_summary": log_summary(self.log_path),
            "checks": checks,
            "timeline": [[round(s.t, 2), s.distinct, s.total] for s in self.samples],
        }


def log_summary(path: Path) -> dict[str, int]:
    """Warning and error events of the consumer log, counted by level and message."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                if "Error" in line or "WARNING" in line:
                    counts["(non-json) " + line.strip()[:100]] += 1
                continue
            if isinstance(rec, dict) and rec.get("level") in ("warning", "error", "critical"):
                counts[f"{rec['level']}: {rec.get('event')}"] += 1
    return dict(counts.most_common(25))


def molecules(count: int) -> list[Molecule]:
    """Distinct ids, valid SMILES."""
    return [Molecule(id=f"c{i}", smiles="C" * (1 + i % 30)) for i in range(count)]


def print_report(result: dict[str, Any], wall_s: float) -> None:
    table = Table("measure", "value", title="chaos: one run, faults injected mid-stream")
    table.add_row("molecules published", f"{result['published']:,}")
    table.add_row("distinct ids predicted", f"{result['distinct_predicted']:,}")
    style = "green" if result["lost"] == 0 else "bold red"
    table.add_row("lost", f"[{style}]{result['lost']:,}[/]")
    table.add_row("predictions (incl. duplicates)", f"{result['predictions_total']:,}")
    table.add_row("duplicates", f"{result['duplicates']:,}")
    hist = ", ".join(f"{k}x: {v:,}" for k, v in result["duplicate_histogram"].items()) or "-"
    table.add_row("duplicate histogram (ids by times predicted)", hist)
    table.add_row("dead letters (molecules.dlq)", str(result["dead_letters"]))
    table.add_row("FAILED predictions", str(result["failed_predictions"]))
    table.add_row("stream time (s)", str(result["stream_s"]))
    table.add_row("overall molecules/s", str(result["molecules_per_s_overall"]))
    table.add_row("median pre-fault molecules/s", str(result["molecules_per_s_pre_fault_median"]))
    sd = result["final_shutdown"]
    table.add_row(
        "SIGTERM → exit",
        f"code {sd['exit_code']} in {sd['took_s']} s (timeout {sd['shutdown_timeout_s']:g} s)",
    )
    table.add_row("wall time (s)", f"{wall_s:.1f}")
    console.print(table)
    faults = Table(
        "#",
        "kind",
        "at %",
        "t (s)",
        "restored (s)",
        "pre-fault /s",
        "catch-up (s)",
        "after restore (s)",
        "dups caused",
        "dups seen until next",
        title="faults",
    )
    for i, f in enumerate(result["faults"], 1):
        cu = "-" if f["catch_up_s"] is None else f"{f['catch_up_s']:.2f}"
        if f["stream_ended_first"]:
            cu += " (end)"
        faults.add_row(
            str(i),
            f["kind"],
            f"{f['progress_pct']:.1f}",
            f"{f['t_s']:.1f}",
            "-" if f["restored_t_s"] is None else f"{f['restored_t_s']:.1f}",
            str(f["pre_rate_per_s"]),
            cu,
            "-" if f["catch_up_after_restore_s"] is None else f"{f['catch_up_after_restore_s']}",
            str(f["duplicates_caused"]),
            str(f["duplicates_seen_until_next"]),
        )
    console.print(faults)
    failed = [k for k, ok in result["checks"].items() if not ok]
    if failed:
        console.print(f"[bold red]checks failed: {', '.join(failed)}")
    if result["anomalies"]:
        console.print(f"[yellow]anomalies: {result['anomalies']}")


def plot(result: dict[str, Any], path: Path) -> None:
    """Distinct ids and the 1-s rate over time, faults shaded, catch-ups marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    timeline = result["timeline"]
    if len(timeline) < 2:
        return
    t = [row[0] for row in timeline]
    distinct = [row[1] for row in timeline]
    total = [row[2] for row in timeline]
    samples = [Sample(a, b, c) for a, b, c in timeline]
    rt = [x for x in t if x >= 1.0]
    rates = [rate(samples, x - 1.0, x) or 0.0 for x in rt]
    fig = Figure(figsize=(11, 6.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(t, distinct, label="distinct ids predicted")
    top.plot(t, total, label="predictions incl. duplicates", linestyle="--", linewidth=0.8)
    for part, prog in result.get("partition_progress", {}).items():
        step = prog["bucket_s"]
        cumulative, xs, ys = 0, [], []
        for i, n in enumerate(prog["per_bucket"]):
            cumulative += n
            xs.append((i + 1) * step)
            ys.append(cumulative)
        top.plot(xs, ys, linewidth=0.7, linestyle=":", label=f"partition {part} (5 s steps)")
    top.set_ylabel("molecules")
    bottom.plot(rt, rates, linewidth=0.8, label="new ids/s (1 s window)")
    bottom.set_ylabel("molecules/s")
    bottom.set_xlabel("seconds since the first consumer start")
    colors = {"consumer_kill": "tab:red", "node_loss": "tab:orange", "broker_freeze": "tab:purple"}
    for f in result["faults"]:
        end = f["restored_t_s"] or f["t_s"]
        for ax in (top, bottom):
            ax.axvspan(f["t_s"], max(end, f["t_s"] + 0.3), color=colors[f["kind"]], alpha=0.25)
            if f["catch_up_s"] is not None:
                ax.axvline(f["t_s"] + f["catch_up_s"], color=colors[f["kind"]], linewidth=0.8)
        top.annotate(f["kind"], (f["t_s"], 0), rotation=90, fontsize=8, va="bottom")
        if f["pre_rate_per_s"]:
            bottom.hlines(
                CATCH_FRACTION * f["pre_rate_per_s"],
                f["t_s"],
                f["t_s"] + (f["catch_up_s"] or 0),
                colors="gray",
                linestyles=":",
            )
    top.legend(loc="upper left")
    bottom.legend(loc="upper left")
    top.set_title(
        f"chaos: {result['published']:,} molecules, lost {result['lost']}, "
        f"duplicates {result['duplicates']:,} (shaded: fault → restored; line: caught up)"
    )
    fig.savefig(path, dpi=110)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    mols = molecules(args.molecules)
    broker_log = Path(args.log_dir) / "broker.log"
    head_args = {"dashboard_agent_listen_port": free_port()}
    with EmbeddedBroker(log_file=broker_log) as broker, LocalCluster(head_args=head_args) as cl:
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
            chaos.kill_consumer()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description="One long run through `molstream consume` with consumer kills, node "
        "losses and a broker freeze injected mid-stream; counts lost, duplicated and failed "
        "molecules and the catch-up time after each fault.",
    )
    parser.add_argument("--molecules", type=int, default=50_000, help="molecules (>= 50,000)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--nodes", type=int, default=2, choices=(2, 3), help="Spot nodes")
    parser.add_argument("--per-molecule-ms", type=float, default=1.0)
    parser.add_argument("--max-in-flight", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--commit-interval-s", type=float, default=0.5)
    parser.add_argument("--shutdown-timeout-s", type=float, default=30.0)
    parser.add_argument("--freeze-s", type=float, default=15.0, help="broker SIGSTOP duration")
    parser.add_argument("--node-replace-delay-s", type=float, default=3.0)
    parser.add_argument(
        "--at",
        type=float,
        nargs=len(SCHEDULE),
        default=list(DEFAULT_AT),
        metavar="PCT",
        help=f"progress thresholds of the faults {', '.join(SCHEDULE)}",
    )
    parser.add_argument("--fault-wait-s", type=float, default=90.0, help="catch-up wait bound")
    parser.add_argument("--timeout-s", type=float, default=480.0, help="bound on the stream")
    parser.add_argument("--dlq-topic", default="molecules.dlq")
    parser.add_argument("--log-dir", default=None, help="consumer/broker logs (default: temp)")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.molecules < 1:
        parser.error("--molecules must be >= 1")
    if args.log_dir is None:
        args.log_dir = tempfile.mkdtemp(prefix="molstream-chaos-")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.molecules < 50_000:
        console.log(f"[yellow]{args.molecules:,} molecules: below the 50,000 of the real run")
    started = time.monotonic()
    result = bench(args)
    wall_s = time.monotonic() - started
    result["wall_s"] = round(wall_s, 1)
    print_report(result, wall_s)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "chaos.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {path}; consumer log {result['consumer_log']}")
    if not args.no_plot:
        try:
            plot(result, args.out / "chaos.png")
            console.print(f"wrote {args.out / 'chaos.png'}")
        except Exception as exc:  # the plot is optional
            console.print(f"[yellow]no plot: {exc!r}")
    if result["lost"]:
        console.print(f"[bold red]{result['lost']:,} molecules LOST")
        return 1
    return 0 if all(result["checks"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
