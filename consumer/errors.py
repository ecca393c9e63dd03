"""The errors of the consumer service, one tree."""

from typing import Any

from consumer.reasons import LossReason


class MolstreamError(Exception):
    """Base of every error the consumer raises on purpose."""


class ConfigurationError(MolstreamError):
    """Raised when settings are inconsistent or name something that does not exist."""


class ModelLoadError(ConfigurationError):
    """Raised when ``--model`` cannot be imported or constructed with its options."""


class WorkerLostError(MolstreamError):
    """Raised when a worker died, was lost with its node, or did not answer in time."""

    def __init__(self, worker: str, reason: LossReason, detail: str = "") -> None:
        super().__init__(f"worker {worker} lost ({reason}){': ' + detail if detail else ''}")
        self.worker = worker
        self.reason = reason
        self.shared = False
        """Other batches ran on the worker too: any of them may have been the cause."""


class UnreadableRecordError(MolstreamError):
    """Raised (carried by a dead letter) when a record the broker returned cannot be parsed:
    a header key that is not UTF-8, a CRC mismatch, a truncated or garbled batch."""


class BatchFailedError(MolstreamError):
    """Raised when a batch raised inside the model (the worker itself survived)."""


class ModelOutputError(BatchFailedError):
    """Raised when a model returns, for a molecule, something that is not a result: a bug of
    the plugin, not of the batch, so the batch fails once, without retries or splits."""


class PublishRejectedError(MolstreamError):
    """Raised when the broker refuses records for good (e.g. too large), not for a while."""

    def __init__(self, rejected: list[tuple[Any, Exception]]) -> None:
        first = rejected[0][1]
        super().__init__(f"{len(rejected)} record(s) rejected: {type(first).__name__}: {first}")
        self.rejected = rejected


class RayLostError(MolstreamError):
    """Raised when the Ray head (GCS) has not answered for too long: the consumer stops."""

    def __init__(self, silent_s: float) -> None:
        super().__init__(
            f"Ray head (GCS) unreachable for {silent_s:.0f} s: Ray cluster lost; committed "
            "what was done, exiting so that a supervisor restarts the consumer"
        )
        self.silent_s = silent_s
