"""The load on the machine while a benchmark runs: CPU of named processes and of the rest."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    pass

# -- load on the machine ----------------------------------------------------------------------


def descendants(*exclude: int) -> list[int]:
    """Pids of this process's descendants, less ``exclude`` and their descendants."""
    skip = set(exclude)
    for pid in exclude:
        with contextlib.suppress(psutil.Error):
            skip |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
    return [c.pid for c in psutil.Process().children(recursive=True) if c.pid not in skip]


def _machine_busy_s() -> float:
    """CPU seconds the machine spent busy since boot, all cores (guest time is in user)."""
    t = psutil.cpu_times()
    not_busy = ("idle", "iowait", "guest", "guest_nice")
    return float(sum(t) - sum(getattr(t, name, 0.0) for name in not_busy))


class LoadMonitor:
    """CPU (in cores) and RSS of named groups of processes and the machine's busy cores,
    sampled every ``interval_s`` in a thread (``with``) or on demand (:meth:`sample`).

    ``groups`` maps a name to a function giving the group's pids at each sample; a process
    counts from the sample after the one that first saw it. ``other_cores`` is the machine's
    busy cores less every group's: load this run did not start (or did not name).
    """

    def __init__(
        self, groups: Mapping[str, Callable[[], Iterable[int]]], interval_s: float = 1.0
    ) -> None:
        self._groups = groups
        self._interval_s = interval_s
        self._procs: dict[int, Any] = {}
        self._cpu_s: dict[int, float] = {}
        self._started = self._at = time.monotonic()
        self._busy_s = _machine_busy_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-monitor", daemon=True)
        self.samples: list[dict[str, float]] = []
        for pids in groups.values():  # first readings: the first sample measures from here
            for pid in pids():
                self._read(pid)

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the tail: even a run shorter than the interval has a sample

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def _read(self, pid: int) -> tuple[float, int] | None:
        """(CPU seconds of the interval, RSS bytes) of ``pid``; None if it is gone."""
        try:
            proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
            with proc.oneshot():
                times, rss = proc.cpu_times(), proc.memory_info().rss
        except psutil.Error:
            self._procs.pop(pid, None)
            return None
        cpu_s = times.user + times.system
        previous = self._cpu_s.get(pid)
        self._cpu_s[pid] = cpu_s
        return (0.0 if previous is None else cpu_s - previous), rss

    def sample(self) -> dict[str, float]:
        """One sample (appended to :attr:`samples`): per group ``<name>_cores`` and
        ``<name>_rss_mb``; ``machine_cores``, ``other_cores`` and the 1-minute load average."""
        now, busy_s = time.monotonic(), _machine_busy_s()
        wall = max(now - self._at, 1e-9)
        row = {"t_s": now - self._started, "machine_cores": (busy_s - self._busy_s) / wall}
        ours = 0.0
        for name, pids in self._groups.items():
            readings = [r for r in map(self._read, pids()) if r is not None]
            row[f"{name}_cores"] = sum(cpu for cpu, _ in readings) / wall
            row[f"{name}_rss_mb"] = sum(rss for _, rss in readings) / 2**20
            ours += row[f"{name}_cores"]
        row["other_cores"] = row["machine_cores"] - ours
        row["load_avg_1m"] = os.getloadavg()[0]
        self._at, self._busy_s = now, busy_s
        self.samples.append(row)
        return row

    def summary(self) -> dict[str, Any]:
        """Mean and max of every series, and how often the machine's cores were all busy."""
        cpus = os.cpu_count() or 1
        keys = [k for k in (self.samples[0] if self.samples else {}) if k != "t_s"]
        out: dict[str, Any] = {"cpus": cpus, "samples": len(self.samples)}
        for key in keys:
            values = [s[key] for s in self.samples]
            out[key] = {"mean": sum(values) / len(values), "max": max(values)}
        busy = [s["machine_cores"] for s in self.samples]
        out["saturated_share"] = sum(b >= 0.9 * cpus for b in busy) / len(busy) if busy else 0.0
        return out


def process_monitor(named: Mapping[str, int | None], interval_s: float = 1.0) -> LoadMonitor:
    """A :class:`LoadMonitor` with a group per named process (this one may be among them)
    and ``ray``: every other descendant of this process, i.e. the local Ray cluster's."""
    pids = {name: pid for name, pid in named.items() if pid}
    groups: dict[str, Callable[[], Iterable[int]]] = {
        name: functools.partial(list, [pid]) for name, pid in pids.items()
    }
    others = [pid for pid in pids.values() if pid != os.getpid()]
    groups["ray"] = lambda: descendants(*others)
    return LoadMonitor(groups, interval_s)
