"""Chaos, the result: what a run did, counted and checked, as the JSON it writes."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bench.chaos.analyse import Fault, Sample
from bench.runner import machine_info
from schemas import Molecule

if TYPE_CHECKING:
    import argparse


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
    counted = _counted({m.id for m in molecules}, counts)
    attribute_duplicates(chaos)
    checks = {
        "nothing_lost": counted["lost"] == 0,
        "every_fault_injected": not not_injected,
        "finished_in_time": done_at is not None,
        "consumer_exited_0_in_time": bool(shutdown["ok"]),
    }
    return {
        "started_at": chaos.started_at,
        "machine": machine_info(),
        "config": config(chaos),
        **counted,
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
        **_rates(chaos.faults, counted["published"], done_at),
        "publish_s": chaos.publish_s,
        "consumer_log": str(chaos.log_path),
        "log_summary": log_summary(chaos.log_path),
        "checks": checks,
        "timeline": [[round(s.t, 2), s.distinct, s.total] for s in chaos.samples],
    }


def _counted(published: set[str], counts: Counter[str]) -> dict[str, Any]:
    """Published, predicted, lost and duplicated ids."""
    histogram = Counter(n for n in counts.values() if n > 1)
    return {
        "published": len(published),
        "distinct_predicted": len(counts),
        "predictions_total": sum(counts.values()),
        "lost": len(published - set(counts)),
        "duplicates": sum(n - 1 for n in counts.values()),
        "duplicate_histogram": {str(k): v for k, v in sorted(histogram.items())},
    }


def _rates(faults: list[Fault], published: int, stream_s: float | None) -> dict[str, Any]:
    """How long the stream took, its rate overall and its median rate before a fault."""
    pre_rates = [f.pre_rate_per_s for f in faults if f.pre_rate_per_s]
    return {
        "stream_s": None if stream_s is None else round(stream_s, 2),
        "molecules_per_s_overall": round(published / stream_s, 1) if stream_s else None,
        "molecules_per_s_pre_fault_median": (
            round(sorted(pre_rates)[len(pre_rates) // 2], 1) if pre_rates else None
        ),
    }
