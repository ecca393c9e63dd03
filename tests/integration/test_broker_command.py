"""``molstream broker`` stops Tansu on SIGTERM and SIGHUP as on Ctrl-C: nothing outlives it."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from consumer.dev.localserver import HOST, accepts_connections, free_port

pytestmark = pytest.mark.integration


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` now (as the broker would, reuse on)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            sock.listen()
        except OSError:
            return False
        return True


@contextlib.contextmanager
def ctrl_c_as_in_a_terminal() -> Iterator[None]:
    """A child started meanwhile gets SIGINT's default, as a command typed in a terminal
    does: a test run started in the background (a script's ``&``) ignores SIGINT, a child
    inherits that, and Python then leaves Ctrl-C ignored, as Unix expects of background jobs.
    A handler set here is reset to the default in the child at exec."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_stops_the_broker_and_frees_its_port(signum: signal.Signals) -> None:
    port = free_port()
    with ctrl_c_as_in_a_terminal():
        proc = subprocess.Popen(
            [sys.executable, "-m", "consumer.cli", "broker", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    tansu: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not accepts_connections(port):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the broker did not start in 60 s"
            time.sleep(0.1)
        tansu = psutil.Process(proc.pid).children(recursive=True)
        assert tansu, "the broker runs as a child process"
        proc.send_signal(signum)
        _, alive = psutil.wait_procs([psutil.Process(proc.pid), *tansu], timeout=5)
        assert not alive, f"still running 5 s after {signum.name}: {alive}"
        assert proc.wait(timeout=1) == 0
        assert port_is_free(port)
    finally:  # whatever failed, leave nothing we started behind (by pid)
        for child in tansu:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
