"""Chaos, analysed: progress rates, catch-up points, duplicates and the result."""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bench.runner import machine_info
from schemas import Molecule, Prediction

if TYPE_CHECKING:
    import argparse


SAMPLE_S = 0.2

PRE_WINDOW_S = 1.5

CATCH_WINDOW_S = 2.0

CATCH_FRACTION = 0.8


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


class ChaosRun(Protocol):
    """What the analysis reads of a run (:class:`bench.chaos.run.Chaos`)."""

    @property
    def args(self) -> argparse.Namespace: ...
    @property
    def argv(self) -> list[str]: ...
    @property
    def samples(self) -> list[Sample]: ...
    @property
    def faults(self) -> list[Fault]: ...
    @property
    def duplicate_detail(self) -> dict[str, Any]: ...
    @property
    def partitions(self) -> dict[str, dict[str, Any]]: ...
    @property
    def anomalies(self) -> list[dict[str, Any]]: ...
    @property
    def pids(self) -> list[int]: ...
    @property
    def started_at(self) -> str: ...
    @property
    def publish_s(self) -> float: ...
    @property
    def log_path(self) -> Path: ...


def attribute_duplicates(chaos: ChaosRun) -> None:
    """Per fault, the duplicates seen until the next one and those whose first copy came
    after it; the ones after the last fault in ``duplicate_detail``."""
    end_dup = chaos.samples[-1].total - chaos.samples[-1].distinct if chaos.samples else 0
    firsts = chaos.duplicate_detail.get("_first_copy_t", [])
    previous = float("-inf")
    for i, fault in enumerate(chaos.faults):
        nxt = chaos.faults[i + 1] if i + 1 < len(chaos.faults) else None
        until = (nxt.total_at - nxt.distinct_at) if nxt else end_dup
        fault.duplicates_seen_until_next = until - (fault.total_at - fault.distinct_at)
        fault.duplicates_caused = sum(1 for t in firsts if previous < t <= fault.t_s)
        previous = fault.t_s
    chaos.duplicate_detail["first_copy_after_last_fault"] = sum(1 for t in firsts if t > previous)
    chaos.duplicate_detail.pop("_first_copy_t", None)


def config(chaos: ChaosRun) -> dict[str, Any]:
    """The settings of the run, as the result records them."""
    args = chaos.args
    return {
        "molecules": args.molecules,
        "nodes": args.nodes,
        "per_molecule_ms": args.per_molecule_ms,
        "max_in_flight": args.max_in_flight,
        "batch_size": args.batch_size,
        "commit_interval_s": args.commit_interval_s,
        "shutdown_timeout_s": args.shutdown_timeout_s,
        "freeze_s": args.freeze_s,
        "node_replace_delay_s": args.node_replace_delay_s,
        "fault_thresholds_pct": list(args.at),
        "consumer_argv": chaos.argv[1:],
    }


def summarise(
    chaos: ChaosRun,
    molecules: list[Molecule],
    counts: Counter[str],
    failed: int,
    invalid: int,
    dead_letters: int,
    done_at: float | None,
    shutdown: dict[str, Any],
    not_injected: list[tuple[str, float]],
) -> dict[str, Any]:
    """The run's result: counts, checks, faults, duplicates and the timeline (JSON)."""
    published = {m.id for m in molecules}
    lost = len(published - set(counts))
    histogram = Counter(n for n in counts.values() if n > 1)
    duplicates = sum(n - 1 for n in counts.values())
    attribute_duplicates(chaos)
    pre_rates = [f.pre_rate_per_s for f in chaos.faults if f.pre_rate_per_s]
    stream_s = done_at
    checks = {
        "nothing_lost": lost == 0,
        "every_fault_injected": not not_injected,
        "finished_in_time": done_at is not None,
        "consumer_exited_0_in_time": bool(shutdown["ok"]),
    }
    return {
        "started_at": chaos.started_at,
        "machine": machine_info(),
        "config": config(chaos),
        "published": len(published),
        "distinct_predicted": len(counts),
        "predictions_total": sum(counts.values()),
        "lost": lost,
        "duplicates": duplicates,
        "duplicate_histogram": {str(k): v for k, v in sorted(histogram.items())},
        "duplicate_runs": chaos.duplicate_detail,
        "partition_progress": chaos.partitions,
        "dead_letters": dead_letters,
        "failed_predictions": failed,
        "invalid_input_predictions": invalid,
        "faults": [asdict(f) for f in chaos.faults],
        "faults_not_injected": [k for k, _ in not_injected],
        "anomalies": chaos.anomalies,
        "consumer_pids": chaos.pids,
        "final_shutdown": shutdown,
        "stream_s": None if stream_s is None else round(stream_s, 2),
        "molecules_per_s_overall": round(len(published) / stream_s, 1) if stream_s else None,
        "molecules_per_s_pre_fault_median": (
            round(sorted(pre_rates)[len(pre_rates) // 2], 1) if pre_rates else None
        ),
        "publish_s": chaos.publish_s,
        "consumer_log": str(chaos.log_path),
        "log_summary": log_summary(chaos.log_path),
        "checks": checks,
        "timeline": [[round(s.t, 2), s.distinct, s.total] for s in chaos.samples],
    }
