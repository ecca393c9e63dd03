"""The HTTP endpoint of a consumer: ``/metrics``, ``/healthz`` and ``/readyz``.

Served by aiohttp on the consumer's own event loop, not from a thread: when the loop hangs, the
probes stop answering too, which is what a liveness probe is for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from consumer.lifecycle import Lifecycle
from consumer.ops.health import Health


class StatusServer(Lifecycle):
    """``start`` binds ``host:port`` (0: any free port, see :attr:`port`); ``stop`` is safe
    twice; ``async with`` works too."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: CollectorRegistry | None,
        health: Callable[[], Health | None],
        max_poll_interval_s: float,
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._health = health
        self._max_poll_interval_s = max_poll_interval_s
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        """Serve until :meth:`stop`."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry) if self._registry is not None else b""
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        health = self._health()
        # Answering at all proves the loop runs; the poll age proves the intake does.
        limit_s = self._max_poll_interval_s / 2
        ok = health is None or health.polled_s_ago < limit_s
        detail = {"polled_s_ago": None if health is None else round(health.polled_s_ago, 3)}
        return _answer(ok, {**detail, "limit_s": limit_s})

    async def _readyz(self, request: web.Request) -> web.Response:
        health = self._health()
        ok = health is not None and health.ready
        detail = {
            "assigned": health is not None and health.assigned,
            "workers": 0 if health is None else health.workers,
            "ray_head": None if health is None else health.ray_head,
            "ray_answered_s_ago": None if health is None else round(health.ray_answered_s_ago, 1),
        }
        return _answer(ok, detail)


def _answer(ok: bool, detail: Mapping[str, object]) -> web.Response:
    body = json.dumps({"status": "ok" if ok else "failing", **detail})
    return web.Response(status=200 if ok else 503, text=body, content_type="application/json")
