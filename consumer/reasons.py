"""The closed vocabularies that logs, dead letters and metrics share."""

from __future__ import annotations

import enum


class LossReason(enum.StrEnum):
    """Why a worker left the pool without being asked to."""

    DIED = "died"
    """The actor process died (a model that crashed it, an OOM kill)."""
    UNAVAILABLE = "unavailable"
    """Its node stopped answering: the first sign of a lost node."""
    PREEMPTED = "preempted"
    """Its node was draining (a Spot notice) or Ray says it was preempted."""
    TIMEOUT = "timeout"
    """It did not answer a batch within ``--batch-timeout-s``; it is killed."""
    RAY_ERROR = "ray_error"
    """Any other Ray failure of the call."""
    START_FAILED = "start_failed"
    """The model could not be loaded."""

    @property
    def spends_attempt(self) -> bool:
        """Whether a batch lost this way counts a failed attempt: node trouble is not the
        batch's fault."""
        return self not in (LossReason.PREEMPTED, LossReason.UNAVAILABLE)


class DeadLetterStage(enum.StrEnum):
    """Where a record failed on its way to a prediction (header ``molstream.error.stage``)."""

    FETCH = "fetch"
    """The broker's bytes could not be read as records (aiokafka's parser refused them)."""
    DECODE = "decode"
    MODEL = "model"
    PUBLISH = "publish"
