"""``molstream consume`` as a process: signals, the status endpoint, the exit status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import structlog
from prometheus_client import CollectorRegistry

from consumer.errors import RayLostError
from consumer.hooks import Hooks
from consumer.models import resolve_model_class
from consumer.ops.status_server import StatusServer
from consumer.pool import ray_runtime
from consumer.processor import StreamProcessor
from consumer.settings import ConsumerSettings

log = structlog.get_logger(__name__)

RAY_LOST_EXIT_CODE = 3
"""Exit status of ``molstream consume`` when the Ray cluster is lost (a supervisor restarts)."""

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signal(
    settings: ConsumerSettings,
    hooks: Hooks | None = None,
    *,
    metrics_registry: CollectorRegistry | None = None,
) -> None:
    """Run a processor until SIGTERM or SIGINT, then shut it down gracefully. With
    ``settings.metrics_port``, serve ``metrics_registry`` and the health endpoints on it.

    A lost Ray cluster ends the process itself, with status :data:`RAY_LOST_EXIT_CODE`, after
    the bounded shutdown: Ray's client threads may be stuck until Ray aborts the process.
    """
    # Join Ray first: ray.init installs its own SIGTERM handler (which aborts the process);
    # ours, installed next, replaces it so that SIGTERM means a graceful shutdown.
    resolve_model_class(settings.model)  # a typo fails here, before Ray starts
    ray_owned = ray_runtime.connect(
        settings.ray_address, settings.ray_node_ip, settings.ray_auth_token_file
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    processor = StreamProcessor(settings, hooks=hooks)
    status = StatusServer(
        host=settings.metrics_host,
        port=settings.metrics_port or 0,
        registry=metrics_registry,
        health=processor.health,
        max_poll_interval_s=settings.max_poll_interval_s,
    )
    try:
        if settings.metrics_port is not None:
            await status.start()  # probes answer during start-up too
        await _run(processor, stop)
    except RayLostError as exc:
        log.error("Ray cluster lost: exiting", error=str(exc), exit_code=RAY_LOST_EXIT_CODE)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(RAY_LOST_EXIT_CODE)
    finally:
        await status.stop()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
        if ray_owned:
            ray_runtime.disconnect()


async def _run(processor: StreamProcessor, stop: asyncio.Event) -> None:
    # A signal during start-up (e.g. while the broker is unreachable) stops it too.
    starting = asyncio.create_task(processor.start())
    signalled = asyncio.create_task(stop.wait())
    await asyncio.wait([starting, signalled], return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    if not starting.done():
        starting.cancel()  # start() cleans up after itself when cancelled
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return
    starting.result()
    try:
        await processor.run_until(stop)
    finally:
        await processor.stop()
