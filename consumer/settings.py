"""Settings of ``molstream consume``: every field is a CLI option and a MOLSTREAM_* variable."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from consumer.input_settings import InputBounds
from consumer.ops_settings import OpsSettings
from consumer.ray_settings import RayAuthSettings
from schemas.kafka import ProducerSettings
from schemas.registry_settings import RegistryWriterSettings

SHUTDOWN_MARGIN_S = 20.0
"""Stopping the autoscaler and the workers and leaving Ray, on top of the bounded steps."""
FETCH_WAIT_MIN_MS = 5.0
FETCH_WAIT_MAX_MS = 500.0


class ConsumerSettings(
    InputBounds, OpsSettings, RayAuthSettings, RegistryWriterSettings, ProducerSettings
):
    """Everything ``molstream consume`` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    input_topic: str = Field("molecules", description="Topic the molecules arrive on.")
    output_topic: str = Field("predictions", description="Topic the predictions go to.")
    dlq_topic: str = Field("molecules.dlq", description="Dead-letter topic for unreadable records.")
    group_id: str = Field("molstream", description="Kafka consumer group.")
    model: str = Field(
        "reference", description="Model: 'reference', 'synthetic' or a 'module:Class' plugin."
    )
    model_option: dict[str, str] = Field(
        default_factory=dict,
        description="Model constructor option KEY=VALUE (repeatable); env: a JSON object.",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster (GCS) address; unset starts a local Ray on 127.0.0.1."
    )
    ray_node_ip: str | None = Field(
        None,
        description="This driver's IP for Ray; default 127.0.0.1 for a local cluster, "
        "Ray's own choice for a remote one.",
    )
    worker_num_cpus: float = Field(1.0, ge=0, description="CPUs each worker actor reserves.")
    worker_num_gpus: float = Field(0.0, ge=0, description="GPUs each worker actor reserves.")
    worker_resources: dict[str, float] = Field(
        default_factory=dict,
        description='Custom Ray resources per worker as JSON, e.g. {"spot": 1}.',
    )
    worker_concurrency: int = Field(
        1,
        ge=1,
        le=256,
        description="Batches one worker computes at once (Ray max_concurrency, in threads): "
        "for models that wait on a GPU or I/O or release the GIL.",
    )
    min_workers: int = Field(1, ge=0, description="Smallest pool size.")
    max_workers: int = Field(4, ge=1, description="Largest pool size.")
    batch_size: int = Field(64, ge=1, description="Molecules per micro-batch.")
    batch_wait_ms: float = Field(
        50.0, ge=0, description="Longest wait to fill a micro-batch before sending it partial."
    )
    fetch_max_wait_ms: float | None = Field(
        None,
        ge=0,
        description="Longest the broker holds a fetch waiting for records; at most the "
        "batch wait (default: a fifth of it, within 5-500 ms).",
    )
    max_in_flight: int = Field(
        2048, ge=1, description="Molecules fetched and not yet committed; fetching pauses at it."
    )
    max_attempts: int = Field(3, ge=1, description="Attempts of a batch before it is split.")
    batch_timeout_s: float = Field(
        120.0, gt=0, description="A worker that takes longer on a batch is killed and replaced."
    )
    max_smiles_length: int = Field(
        2000, ge=1, description="Longer SMILES are INVALID_INPUT without reaching a model."
    )
    shutdown_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Bound on draining batches running on workers, on SIGTERM/SIGINT and on a "
        "revoke.",
    )
    commit_interval_s: float = Field(1.0, gt=0, description="How often done offsets are committed.")
    session_timeout_s: float = Field(
        10.0, gt=0, description="Kafka group session: a member silent this long is dropped."
    )
    heartbeat_interval_s: float = Field(
        3.0, gt=0, description="Kafka group heartbeats; at most a third of the session timeout."
    )
    max_poll_interval_s: float = Field(
        300.0,
        ge=2,
        description="Kafka group: a member that does not poll this long is dropped (a paused "
        "consumer keeps polling).",
    )
    rebalance_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Kafka group: how long a rebalance waits for members; a revoke's drain "
        "(--shutdown-timeout-s) must fit inside it.",
    )
    group_instance_id: str | None = Field(
        None,
        description="Static group membership (KIP-345): a restart within the session timeout "
        "keeps its partitions; unique per consumer process.",
    )
    ray_timeout_s: float = Field(
        30.0,
        gt=0,
        lt=60,
        description="Ray head (GCS) refused or gone for half of this, or answering nothing at "
        "all for this long: commit what is done and exit non-zero (below Ray's own 60 s "
        "abort). Slow answers are counted, never an exit.",
    )
    target_drain_s: float = Field(
        60.0, gt=0, description="Autoscaling: how fast a backlog should be cleared."
    )
    upscale_delay_s: float = Field(
        2.0, ge=0, description="Autoscaling: how long more workers must be wanted before adding."
    )
    downscale_delay_s: float = Field(
        30.0,
        ge=0,
        description="Autoscaling: how long fewer workers must be wanted before removing.",
    )
    autoscale_interval_s: float = Field(
        1.0, gt=0, description="Autoscaling: how often lag is read and the pool resized."
    )

    @field_validator("model_option", mode="before")
    @classmethod
    def _parse_options(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            pairs = {}
            for item in value:
                key, sep, val = str(item).partition("=")
                if not sep or not key:
                    raise ValueError(f"model option {item!r} is not KEY=VALUE")
                pairs[key] = val
            return pairs
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"--min-workers {self.min_workers} exceeds --max-workers {self.max_workers}"
            )
        if self.max_in_flight < self.batch_size:
            raise ValueError(
                f"--max-in-flight {self.max_in_flight} is below --batch-size {self.batch_size}"
            )
        # A fetch the broker holds longer than the batch wait delays every partial batch by
        # the difference: the latency floor is the batch wait, not the fetch wait.
        if self.fetch_max_wait_ms is not None and self.fetch_max_wait_ms > self.batch_wait_ms:
            raise ValueError(
                f"--fetch-max-wait-ms {self.fetch_max_wait_ms:g} exceeds --batch-wait-ms "
                f"{self.batch_wait_ms:g}: records would wait in the broker past their batch"
            )
        if len({self.input_topic, self.output_topic, self.dlq_topic}) != 3:
            raise ValueError("input, output and dead-letter topics must all differ")
        self._check_group_timing()
        return self

    def _check_group_timing(self) -> None:
        # A revoke drains inside the rebalance: past the rebalance timeout the broker drops
        # the member and its commits fail, so the work it drained for is redone.
        if self.shutdown_timeout_s >= self.rebalance_timeout_s:
            raise ValueError(
                f"--shutdown-timeout-s {self.shutdown_timeout_s:g} (the drain bound of a "
                f"revoke) must be below --rebalance-timeout-s {self.rebalance_timeout_s:g}"
            )
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError(
                f"--heartbeat-interval-s {self.heartbeat_interval_s:g} must be at most a third "
                f"of --session-timeout-s {self.session_timeout_s:g}"
            )
        # No poll happens while a shutdown drains: the member must outlive the drain.
        if self.shutdown_timeout_s >= self.max_poll_interval_s:
            raise ValueError(
                f"--shutdown-timeout-s {self.shutdown_timeout_s:g} must be below "
                f"--max-poll-interval-s {self.max_poll_interval_s:g}"
            )

    @property
    def worst_case_shutdown_s(self) -> float:
        """The longest a graceful shutdown can take: the drain, then flush, commit and leave
        (each bounded by ``broker_timeout_s``), plus leaving Ray. A supervisor's grace period
        (Kubernetes' terminationGracePeriodSeconds) should cover it."""
        return self.shutdown_timeout_s + 3 * self.broker_timeout_s + SHUTDOWN_MARGIN_S

    @property
    def fetch_wait_ms(self) -> int:
        """As set, else a fifth of the batch wait within 5-500 ms: a broker may hold a fetch
        that long with records there (the embedded one answers a fetch only when its wait is
        over), which adds to the batch wait; below 5 an idle consumer would spin on empty
        fetches."""
        if self.fetch_max_wait_ms is not None:
            return int(self.fetch_max_wait_ms)
        fifth = self.batch_wait_ms / 5
        return int(min(FETCH_WAIT_MAX_MS, max(FETCH_WAIT_MIN_MS, fifth)))

    @property
    def batch_wait_s(self) -> float:
        """``batch_wait_ms`` in seconds."""
        return self.batch_wait_ms / 1000
