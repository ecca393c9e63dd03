"""Ray Data against molstream, analysed: an outcome from the watcher and the memory peaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Memory(Protocol):
    """What the analysis reads of the memory sampler
    (:class:`bench.vs_raydata.run.MemorySampler`)."""

    @property
    def peaks(self) -> dict[str, float]: ...
    @property
    def samples(self) -> int: ...
    @property
    def breakdown(self) -> list[dict[str, Any]]: ...


@dataclass
class Outcome:
    """One system on the job."""

    system: str
    molecules: int
    predictions_seen: int
    total_s: float
    molecules_per_s: float
    first_prediction_s: float
    molecules_per_s_after_first: float
    peak_driver_workers_mb: float
    peak_all_ray_mb: float
    peak_driver_workers_pss_mb: float
    peak_all_ray_pss_mb: float
    detail: dict[str, Any]


def measured(
    system: str,
    count: int,
    t0: float,
    seen: dict[str, Any],
    sampler: Memory,
    detail: dict[str, Any],
) -> Outcome:
    """An outcome from the watcher's timestamps (``first``, ``last``, ``count``) and the
    sampler's peaks."""
    first = seen["first"] - t0 if seen["first"] else float("nan")
    total = seen["last"] - t0 if seen["last"] else float("nan")
    return Outcome(
        system=system,
        molecules=count,
        predictions_seen=int(seen["count"]),
        total_s=total,
        molecules_per_s=seen["count"] / total if seen["last"] else 0.0,
        first_prediction_s=first,
        molecules_per_s_after_first=(
            seen["count"] / (total - first) if seen["last"] and total > first else 0.0
        ),
        peak_driver_workers_mb=sampler.peaks["rss_driver+workers"],
        peak_all_ray_mb=sampler.peaks["rss_all"],
        peak_driver_workers_pss_mb=sampler.peaks["pss_driver+workers"],
        peak_all_ray_pss_mb=sampler.peaks["pss_all"],
        detail={
            **detail,
            "memory_samples": sampler.samples,
            "memory_peaks_mb": sampler.peaks,
            "processes_at_peak": sampler.breakdown,
        },
    )
