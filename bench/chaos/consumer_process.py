"""``molstream consume`` as the chaos run's subprocess: killed, started again, stopped."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any


class ConsumerProcess:
    """One consumer process at a time, its output appended to one log."""

    def __init__(self, argv: list[str], log_path: Path, shutdown_timeout_s: float) -> None:
        self.argv = argv
        self.log_path = log_path
        self._shutdown_timeout_s = shutdown_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start a consumer (after the previous one exited or was killed)."""
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        self.pids.append(self._proc.pid)

    def poll(self) -> int | None:
        """The exit code of the consumer, None while it runs."""
        assert self._proc is not None
        return self._proc.poll()

    def kill9(self) -> dict[str, Any]:
        """SIGKILL, as a crash would: its pid and exit code."""
        assert self._proc is not None
        proc = self._proc
        proc.send_signal(signal.SIGKILL)
        return {"pid": proc.pid, "exit_code": reap(proc, 10)}

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then wait up to the shutdown timeout + 15 s; report code and time."""
        assert self._proc is not None
        proc = self._proc
        proc.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        code = reap(proc, self._shutdown_timeout_s + 15)
        took = time.monotonic() - asked
        return {
            "pid": proc.pid,
            "exit_code": code,
            "took_s": round(took, 2),
            "shutdown_timeout_s": self._shutdown_timeout_s,
            "ok": code == 0 and took <= self._shutdown_timeout_s,
        }

    def kill(self) -> None:
        """Kill our consumer by pid if it is still running."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def reap(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """Wait (bounded) for ``proc`` to exit; None if it did not."""
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None
