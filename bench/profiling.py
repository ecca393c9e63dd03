"""A py-spy profile of this process over a window (``pip install py-spy`` into the .venv).

Sampled from outside (``--nonblocking``: the process is not paused), every thread, as raw
collapsed stacks: one line per stack with its sample count, for flame graphs or sums.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

RATE_PER_S = 200
STOP_TIMEOUT_S = 30.0
"""How long py-spy may take to write its profile once stopped."""


def beside(profile: Path | None, kind: str) -> Path | None:
    """Where a profile of another ``kind`` of process goes beside ``profile`` (None: none)."""
    if profile is None:
        return None
    return profile.with_name(f"{profile.stem}.{kind}.raw")


@contextlib.contextmanager
def profiled(
    out: Path | None, seconds: float, *, pid: int | None = None, idle: bool = False
) -> Iterator[None]:
    """Profile this process (or ``pid``) until the block ends (at most ``seconds``) into
    ``out``; nothing when ``out`` is None. ``idle`` keeps the samples of threads that wait
    (sleep, select): a thread's whole time, not only its CPU."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    command = [
        py_spy,
        "record",
        "--pid",
        str(os.getpid() if pid is None else pid),
        "--duration",
        f"{seconds:.0f}",
        "--rate",
        str(RATE_PER_S),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
        *(["--idle"] if idle else []),
    ]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        # The window is the block: py-spy stops on SIGINT and writes what it sampled.
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=STOP_TIMEOUT_S)
