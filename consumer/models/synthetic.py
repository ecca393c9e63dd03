"""A synthetic model with a configurable load time and per-molecule cost, for scheduling runs."""

from __future__ import annotations

import time

from consumer.models.base import ModelResult
from schemas import Status


class SyntheticModel:
    """Sleeps ``load_s`` once when built and ``per_molecule_ms`` per molecule when predicting."""

    name = "synthetic"
    version = "1.0.0"

    def __init__(self, load_s: str | float = 0.0, per_molecule_ms: str | float = 0.0) -> None:
        self.load_s = float(load_s)
        self.per_molecule_ms = float(per_molecule_ms)
        if self.load_s < 0 or self.per_molecule_ms < 0:
            raise ValueError("load_s and per_molecule_ms must be >= 0")
        time.sleep(self.load_s)

    def predict(self, smiles: list[str]) -> list[ModelResult]:
        """A deterministic output per molecule after the configured delay."""
        if self.per_molecule_ms:
            time.sleep(self.per_molecule_ms * len(smiles) / 1000)
        return [ModelResult(Status.OK, {"length": float(len(s))}) for s in smiles]
