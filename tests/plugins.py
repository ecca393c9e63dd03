"""Model plugins used by the tests (loaded by the workers as ``tests.plugins:Class``)."""

from __future__ import annotations

import os

from consumer.models import ModelResult
from schemas import Status

KILL_MARKER = "KILL"
RAISE_MARKER = "RAISE"


class KillerModel:
    """Kills its own worker process on the marker molecule; raises on another marker."""

    name = "killer"
    version = "1"

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """OK for everything else."""
        if KILL_MARKER in smiles:
            os._exit(1)  # the worker process dies, as a segfaulting model would
        if RAISE_MARKER in smiles:
            raise ValueError("the model cannot handle this molecule")
        return [ModelResult(Status.OK, {"length": float(len(s))}) for s in smiles]
