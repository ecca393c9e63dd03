"""An exponentially weighted moving average (pure): of rates, of start-up times."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted moving average; None until the first sample."""

    alpha: float = 0.2
    value: float | None = None

    def update(self, sample: float) -> float:
        """Fold in one sample and return the new average."""
        self.value = (
            sample if self.value is None else (1 - self.alpha) * self.value + self.alpha * sample
        )
        return self.value
