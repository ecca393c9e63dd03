"""/healthz and /readyz answer from the event loop, as the health facts say."""

from __future__ import annotations

import json

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from consumer.ops.health import Health
from consumer.ops.status_server import StatusServer


async def _get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as answer,
    ):
        return answer.status, await answer.text()


async def test_health_readiness_and_metrics() -> None:
    health = Health(polled_s_ago=1.0, assigned=True, workers=0)
    registry = CollectorRegistry()
    Counter("probe_events", "A counter.", registry=registry).inc()
    server = StatusServer(
        host="127.0.0.1",
        port=0,
        registry=registry,
        health=lambda: health,
        max_poll_interval_s=20,
    )
    async with server:
        assert server.port > 0
        assert (await _get(server.port, "/healthz"))[0] == 200
        status, body = await _get(server.port, "/readyz")
        assert status == 503 and '"workers": 0' in body  # no worker, and some wanted
        health = Health(polled_s_ago=1.0, assigned=True, workers=1)
        assert (await _get(server.port, "/readyz"))[0] == 200
        # A slow Ray head is shown, and does not make the consumer unready.
        health = Health(
            polled_s_ago=1.0, assigned=True, workers=1, ray_head="slow", ray_answered_s_ago=21.04
        )
        status, body = await _get(server.port, "/readyz")
        assert status == 200, body
        assert json.loads(body) | {"ray_head": "slow", "ray_answered_s_ago": 21.0} == json.loads(
            body
        )
        health = Health(polled_s_ago=0.0, assigned=True, workers=0, scaled_to_zero=True)
        assert (await _get(server.port, "/readyz"))[0] == 200
        health = Health(polled_s_ago=0.0, assigned=False, workers=3)
        assert (await _get(server.port, "/readyz"))[0] == 503
        health = Health(polled_s_ago=10.5, assigned=True, workers=1)  # over 20 / 2
        status, body = await _get(server.port, "/healthz")
        assert status == 503 and '"limit_s": 10.0' in body
        status, body = await _get(server.port, "/metrics")
        assert status == 200 and "probe_events_total 1.0" in body
    await server.stop()  # safe twice
