"""A server subprocess on 127.0.0.1 that this process starts, waits for and stops by pid."""

from __future__ import annotations

import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from consumer.errors import MolstreamError

HOST = "127.0.0.1"


class ServerStartError(MolstreamError):
    """Raised when a local server exits or does not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class StartStop(ABC):
    """``with`` for an object whose ``start`` and ``stop`` are idempotent."""

    @abstractmethod
    def start(self) -> None:
        """Start; a second call does nothing."""

    @abstractmethod
    def stop(self) -> None:
        """Stop; safe twice."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalServer(StartStop):
    """``start`` runs :meth:`command` and polls :meth:`ready`; ``stop`` terminates the pid
    (then kills it after ``stop_timeout_s``). Both are idempotent; ``with`` works too."""

    name = "server"  # for messages

    def __init__(
        self,
        *,
        log_file: Path | None = None,
        start_timeout_s: float = 20.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.log_file = log_file
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts the server."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the server answers yet (called every 0.1 s while starting)."""

    @property
    def pid(self) -> int | None:
        """Process id while running (tests freeze it with SIGSTOP)."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start the server and wait until it is ready."""
        if self._proc is not None:
            return
        command = self.command()
        if self.log_file is None:
            self._proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
        else:
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(self._proc)
        except BaseException:  # a signal while starting must not leave the server behind
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {proc.returncode}{self._log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        raise ServerStartError(f"{self.name} not ready in {self._start_timeout_s:g} s")

    def stop(self) -> None:
        """Stop the process we started (by pid), then reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self._stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait(self) -> int:
        """Block until the server exits (foreground use)."""
        assert self._proc is not None
        return self._proc.wait()

    def _log_tail(self, chars: int = 2000) -> str:
        if self.log_file is None:
            return ""
        try:
            return ": " + self.log_file.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


def accepts_connections(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False
