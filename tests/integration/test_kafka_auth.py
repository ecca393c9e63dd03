"""Issue 18 item 3 against the embedded broker started with ``--authentication`` (SASL SCRAM
required, no user known): a refused login ends ``consume``, ``produce`` and ``results`` within
seconds with one line saying authentication failed, and the password appears nowhere
(``redrive`` too)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from schemas.kafka import KafkaSettings
from schemas.kafka_refusals import KafkaAuthError, probe_login, raise_if_refused
from tests.harness import consume_command

pytestmark = pytest.mark.integration

SECRET = "Wr0ng-passw0rd-never-printed"
EXIT_WITHIN_S = 60.0


class AuthenticatingBroker(EmbeddedBroker):
    """Tansu requiring SASL SCRAM-SHA-256/512 of every client."""

    def command(self) -> list[str]:
        return [*super().command(), "--authentication"]


@pytest.fixture
def auth_broker() -> Iterator[AuthenticatingBroker]:
    with AuthenticatingBroker() as broker:
        yield broker


def _login(mechanism: str) -> list[str]:
    return [
        *("--security-protocol", "SASL_PLAINTEXT"),
        *("--sasl-mechanism", mechanism),
        *("--sasl-username", "molstream"),
    ]


async def _run(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "MOLSTREAM_SASL_PASSWORD": SECRET}
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=180, env=env, check=False
    )
    return done, time.monotonic() - started


def _assert_refused(done: subprocess.CompletedProcess[str], elapsed_s: float) -> None:
    output = done.stdout + done.stderr
    assert SECRET not in output
    assert done.returncode == 2, output[-3000:]
    assert elapsed_s < EXIT_WITHIN_S
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "Kafka authentication failed" in errors[0]
    assert "--sasl-username" in errors[0] and "MOLSTREAM_SASL_PASSWORD" in errors[0]


async def test_consume_with_a_refused_scram_login_exits_at_once(
    auth_broker: AuthenticatingBroker, ray_cluster: LocalCluster
) -> None:
    argv = consume_command(
        auth_broker.bootstrap_servers, ray_cluster.address, *_login("SCRAM-SHA-256")
    )
    done, elapsed_s = await _run(argv)
    _assert_refused(done, elapsed_s)
    print(f"consume refused in {elapsed_s:.1f} s")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_produce_results_and_redrive_with_a_refused_scram_login_exit_at_once(
    auth_broker: AuthenticatingBroker, tmp_path: Path, mechanism: str
) -> None:
    molecules = tmp_path / "in.smi"
    molecules.write_text("CCO ethanol\n")
    cli = [sys.executable, "-m", "consumer.cli"]
    bootstrap = ("--bootstrap-servers", auth_broker.bootstrap_servers)
    for argv in (
        [*cli, "produce", str(molecules), *bootstrap, *_login(mechanism)],
        [*cli, "results", "--timeout-s", "5", *bootstrap, *_login(mechanism)],
        [*cli, "redrive", "--timeout-s", "5", *bootstrap, *_login(mechanism)],
    ):
        done, elapsed_s = await _run(argv)
        _assert_refused(done, elapsed_s)
        print(f"{argv[3]} refused in {elapsed_s:.1f} s")


async def test_a_failed_bootstrap_is_asked_again_to_tell_a_refusal_from_an_outage(
    auth_broker: AuthenticatingBroker,
) -> None:
    # aiokafka's bootstrap reports a refused login as "Unable to bootstrap" (Apache Kafka's
    # SaslAuthenticationFailed is swallowed there): one direct login tells the two apart.
    refused = KafkaSettings(
        bootstrap_servers=auth_broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="molstream",
        sasl_password=SecretStr(SECRET),
    )
    bootstrap_failed = KafkaConnectionError("Unable to bootstrap from the brokers")
    with pytest.raises(KafkaAuthError, match="Kafka authentication failed") as info:
        await raise_if_refused(refused, bootstrap_failed)
    assert SECRET not in str(info.value)
    with socket.socket() as probe:  # a port nothing listens on: an outage, not a refusal
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    away = refused.model_copy(update={"bootstrap_servers": closed})
    await asyncio.wait_for(raise_if_refused(away, bootstrap_failed), 30)
    assert await probe_login(away) is None
