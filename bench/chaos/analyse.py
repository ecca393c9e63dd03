"""Chaos, analysed: progress rates, catch-up points, duplicates (the result that reports them:
:mod:`bench.chaos.result`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from schemas import Prediction

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
