"""The lifecycle of every long-lived object: ``start``, ``stop`` (safe twice), ``async with``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Lifecycle(ABC):
    """``async with`` over :meth:`start` and :meth:`stop`."""

    @abstractmethod
    async def start(self) -> None:
        """Start; a second call does nothing."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop; safe twice, and after a failed start."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
