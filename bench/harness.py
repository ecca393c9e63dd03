"""What the benchmarks share beyond the tests' harness: timing hooks, repeated molecules,
consumer processes and topics."""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumer.hooks import Hooks
from schemas import Molecule, Status
from tests.harness import nci

if TYPE_CHECKING:
    from consumer.processor import StreamProcessor

# -- molecules and the machine ----------------------------------------------------------------


def nci_repeated(count: int, prefix: str = "") -> list[Molecule]:
    """``count`` NCI molecules, the file repeated, every id distinct (``prefix`` before it)."""
    base = nci(10**9)
    repeats = (count + len(base) - 1) // len(base)
    return [
        Molecule(id=f"{prefix}{m.id}-{r}", smiles=m.smiles) for r in range(repeats) for m in base
    ][:count]


# -- hooks ------------------------------------------------------------------------------------


class Timing(Hooks):
    """Acknowledged predictions with their timing: the first and the last acknowledgement
    (``perf_counter``) with this process's CPU time at each, every record-timestamp-to-ack
    latency, and each batch's size and inference time. :meth:`reset` starts a new window."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self.count = 0
        self.first: float | None = None
        self.first_count = 0
        self.last = self.first_cpu = self.last_cpu = 0.0
        self.latencies_s: list[float] = []
        self.batch_sizes: list[int] = []
        self.inference_s: list[float] = []

    def predicted(self, statuses: Sequence[Status], end_to_end_s: Sequence[float | None]) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.count += len(statuses)
        if self.first is None:
            self.first, self.first_cpu, self.first_count = now, cpu, self.count
        self.last, self.last_cpu = now, cpu
        self.latencies_s.extend(s for s in end_to_end_s if s is not None)

    def batch(self, worker: str, size: int, inference_s: float) -> None:
        self.batch_sizes.append(size)
        self.inference_s.append(inference_s)

    @property
    def steady(self) -> tuple[int, float, float]:
        """After the first acknowledgement: (predictions, wall seconds, CPU seconds of this
        process)."""
        assert self.first is not None, "nothing acknowledged yet"
        return self.count - self.first_count, self.last - self.first, self.last_cpu - self.first_cpu


# -- settings and processes -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def consumer_process(
    argv: Sequence[str], log_path: Path
) -> collections.abc.AsyncIterator[asyncio.subprocess.Process]:
    """A process (``molstream consume``, say) writing its output to ``log_path``; killed on
    the way out if it is still running."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def terminate(process: asyncio.subprocess.Process, timeout_s: float = 120.0) -> int:
    """Stop a process as a supervisor would (SIGTERM); its exit code."""
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout_s)


async def joined(processor: StreamProcessor, timeout_s: float = 60.0) -> float:
    """Wait until ``processor`` has partitions assigned; seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not processor.consumer.assignment():
            await asyncio.sleep(0.01)
    return time.monotonic() - started


# -- topics -----------------------------------------------------------------------------------


async def create_topics(bootstrap: str, topics: Iterable[str], partitions: int = 4) -> None:
    """Create ``topics`` with ``partitions`` partitions each."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), 30)
    try:
        new = [NewTopic(t, partitions, 1) for t in topics]
        await asyncio.wait_for(admin.create_topics(new), 30)
    finally:
        await admin.close()
