"""Chaos, the output watch: the output topic read in a thread of its own, sampled."""

from __future__ import annotations

import asyncio
import threading
import time

from bench.chaos.analyse import SAMPLE_S, Sample
from tests.harness import OutputWatcher


class Watch:
    """The output topic read in a thread of its own (its own event loop), sampled every
    ``SAMPLE_S``: the main thread may block (Ray adds nodes from the main thread only)."""

    def __init__(self, bootstrap: str, t0: float) -> None:
        self._bootstrap = bootstrap
        self._t0 = t0
        self.samples: list[Sample] = []
        self.out: OutputWatcher | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="output-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("output watcher did not start")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the main thread
            self.error = exc

    async def _main(self) -> None:
        async with OutputWatcher(self._bootstrap) as out:
            self.out = out
            self._ready.set()
            while not self._stop.is_set():
                if out.failed is not None:
                    raise RuntimeError(f"output watcher died: {out.failed!r}")
                self.samples.append(Sample(time.monotonic() - self._t0, len(out.ids), out.total))
                await asyncio.sleep(SAMPLE_S)
