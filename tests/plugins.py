"""Model plugins used by the tests (loaded by the workers as ``tests.plugins:Class``)."""

from __future__ import annotations

import os
import threading
import time

from consumer.models import ModelResult
from schemas import Status

KILL_MARKER = "KILL"
RAISE_MARKER = "RAISE"
HANG_MARKER = "HANG"


class KillerModel:
    """Kills its own worker process on one marker molecule, raises on another, hangs on a
    third (as a model stuck in a native call would)."""

    name = "killer"
    version = "1"

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """OK for everything else."""
        if KILL_MARKER in smiles:
            os._exit(1)  # the worker process dies, as a segfaulting model would
        if RAISE_MARKER in smiles:
            raise ValueError("the model cannot handle this molecule")
        if HANG_MARKER in smiles:
            time.sleep(3600)
        return [ModelResult(Status.OK, {"length": float(len(s))}) for s in smiles]


class DictModel:
    """Returns a plain mapping of numbers per molecule (an OK result)."""

    name = "dict"
    version = "1"

    def predict(self, smiles: list[str]) -> list[dict[str, float]]:
        """``{"length": n}``."""
        return [{"length": len(s)} for s in smiles]


class FloatModel:
    """Returns one number per molecule (output ``value``)."""

    name = "float"
    version = "1"

    def predict(self, smiles: list[str]) -> list[float]:
        """The SMILES length as a float."""
        return [float(len(s)) for s in smiles]


class StringModel:
    """Returns a string per molecule: not a result."""

    name = "string"
    version = "1"

    def predict(self, smiles: list[str]) -> list[str]:
        """What no model may return."""
        return ["active" for _ in smiles]


class OverlapModel:
    """Sleeps ``batch_s`` per batch and reports, per molecule, the most batches its worker
    process was computing at once (``--worker-concurrency`` runs them in threads)."""

    name = "overlap"
    version = "1"

    def __init__(self, batch_s: str = "0.3") -> None:
        self.batch_s = float(batch_s)
        self._lock = threading.Lock()
        self._running = 0
        self._peak = 0

    def predict(self, smiles: list[str]) -> list[dict[str, float]]:
        """``{"concurrent": peak so far}`` for each molecule."""
        with self._lock:
            self._running += 1
            self._peak = max(self._peak, self._running)
        time.sleep(self.batch_s)
        with self._lock:
            self._running -= 1
            peak = self._peak
        return [{"concurrent": float(peak)} for _ in smiles]


class ChlorineBugModel:
    """A model with a bug: it raises for any batch with a chlorine (``Cl``) in it, until
    started with the option ``fixed=yes``."""

    name = "chlorine-bug"
    version = "1"

    def __init__(self, fixed: str = "no") -> None:
        self.fixed = fixed == "yes"

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """OK for every molecule once fixed, or for batches without chlorine."""
        if not self.fixed and any("Cl" in s for s in smiles):
            raise ValueError("chlorine not supported")
        return [ModelResult(Status.OK, {"length": float(len(s))}) for s in smiles]
