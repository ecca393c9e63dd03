"""Issue 18 item 5: a token-authenticated Ray cluster on 127.0.0.1, molecules through it with
the consumer (its token given by --ray-auth-token-file only), and a driver without the right
token refused with an authentication error, not a hang."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.dev.broker import EmbeddedBroker
from consumer.dev.raycluster import LocalCluster
from consumer.pool.ray_runtime import AUTH_MODE_VAR, AUTH_TOKEN_PATH_VAR, AUTH_TOKEN_VAR
from consumer.processor import StreamProcessor
from schemas import Status
from tests.harness import Counting, consumer_settings, nci, publish, read_all, wait_until

pytestmark = pytest.mark.integration

REFUSED_DRIVER_TIMEOUT_S = 120.0
"""Ray's GCS client retries a refused call for a few seconds, then raises: far below this."""


def _reload_ray_auth() -> None:
    """Make this process's Ray see the RAY_AUTH_* variables as they are now."""
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@pytest.fixture
def token_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A head and one Spot node started with RAY_AUTH_MODE=token; yields its address and the
    token's file.

    The variables are set only while the cluster's processes start (they inherit them), then
    removed from this process: the consumer under test must find the token through its setting.
    """
    import ray

    token = tmp_path / "ray-auth-token"
    token.write_text(secrets.token_hex(32), encoding="utf-8")
    monkeypatch.delenv(AUTH_TOKEN_VAR, raising=False)
    monkeypatch.setenv(AUTH_MODE_VAR, "token")
    monkeypatch.setenv(AUTH_TOKEN_PATH_VAR, str(token))
    _reload_ray_auth()
    cluster = LocalCluster()
    try:
        cluster.start()
        cluster.add_spot_node()
        for name in (AUTH_MODE_VAR, AUTH_TOKEN_PATH_VAR):
            monkeypatch.delenv(name)
        _reload_ray_auth()
        yield cluster.address, token
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
        monkeypatch.undo()
        _reload_ray_auth()


def _driver(address: str, home: Path, **auth: str) -> subprocess.CompletedProcess[str]:
    """A bare Ray driver joining ``address`` in a process of its own, with no RAY_AUTH_*
    variable but ``auth`` (and a HOME without ~/.ray/auth_token), bounded in time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH_", "MOLSTREAM_"))}
    env |= {"HOME": str(home), **auth}
    code = (
        "import consumer, ray\n"
        f"ray.init(address={address!r}, _node_ip_address='127.0.0.1', log_to_driver=False)\n"
        "print('JOINED', ray.cluster_resources())\n"
    )
    try:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=REFUSED_DRIVER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"a driver with {sorted(auth) or 'no token'} hung instead of being refused")


async def test_token_cluster_serves_the_consumer_and_refuses_other_drivers(
    broker: EmbeddedBroker, token_cluster: tuple[str, Path], tmp_path: Path
) -> None:
    address, token = token_cluster
    assert AUTH_MODE_VAR not in os.environ and AUTH_TOKEN_PATH_VAR not in os.environ
    molecules = nci(100)
    await publish(broker.bootstrap_servers, "molecules", molecules)
    settings = consumer_settings(
        broker.bootstrap_servers,
        address,
        model="reference",
        min_workers=1,
        max_workers=1,
        group_id="ray-auth-test",
        ray_auth_token_file=token,
    )
    hooks = Counting()
    async with StreamProcessor(settings, hooks=hooks):
        await wait_until(lambda: hooks.predictions >= len(molecules), 180, "all predictions")
    predictions = await read_all(broker.bootstrap_servers, "predictions")
    assert {p.id for p in predictions} == {m.id for m in molecules}
    assert all(p.status is Status.OK for p in predictions)

    home = tmp_path / "home"
    home.mkdir()
    refused = {
        "no token": _driver(address, home),
        "a wrong token": _driver(
            address, home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32)
        ),
    }
    for case, driver in refused.items():
        assert driver.returncode != 0, f"a driver with {case} joined: {driver.stdout}"
        assert "JOINED" not in driver.stdout
        assert "AuthenticationError" in driver.stderr, f"{case}: {driver.stderr[-2000:]}"
        assert token.read_text(encoding="utf-8") not in driver.stderr
    # The right token, through the file alone, is let in by the same cluster.
    admitted = _driver(address, home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    assert admitted.returncode == 0 and "JOINED" in admitted.stdout, admitted.stderr[-2000:]
