"""Micro-batching by size and by wait time (pure: the caller passes the clock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """Collects items into batches of ``batch_size``; a partial batch is due ``batch_wait_s``
    after its first item arrived."""

    def __init__(self, *, batch_size: int, batch_wait_s: float) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if batch_wait_s < 0:
            raise ValueError("batch_wait_s must be >= 0")
        self._size = batch_size
        self._wait_s = batch_wait_s
        self._items: list[T] = []
        self._first_at = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, now: float) -> list[T] | None:
        """Add an item; returns a full batch when this item completes one."""
        if not self._items:
            self._first_at = now
        self._items.append(item)
        return self.flush() if len(self._items) >= self._size else None

    def due(self, now: float) -> list[T] | None:
        """The partial batch, if its first item has waited ``batch_wait_s``."""
        if self._items and now >= self._first_at + self._wait_s:
            return self.flush()
        return None

    def deadline(self) -> float | None:
        """When the partial batch becomes due, or None when empty."""
        return self._first_at + self._wait_s if self._items else None

    def discard(self, predicate: Callable[[T], bool]) -> list[T]:
        """Remove and return the collected items matching ``predicate``."""
        taken = [i for i in self._items if predicate(i)]
        self._items = [i for i in self._items if not predicate(i)]
        return taken

    def flush(self) -> list[T] | None:
        """Take whatever is collected, if anything."""
        if not self._items:
            return None
        batch, self._items = self._items, []
        return batch
