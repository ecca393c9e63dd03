"""What the intake admits: the byte bounds of records, fetches and the in-flight window
(settings of ``molstream consume``, each a ``--option`` and a ``MOLSTREAM_*`` variable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """The bounds of one record (see the ``--max-record-bytes`` family of settings)."""

    max_record_bytes: int
    max_key_bytes: int
    max_header_count: int
    max_header_bytes: int


class InputBounds(BaseSettings):
    """Sizes a record, a fetch and the in-flight window may reach (DESIGN.md, "Trust
    boundary"): every record is untrusted, so each size has a bound."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    max_in_flight_bytes: int = Field(
        256 * MIB,
        ge=1,
        description="Bytes of the molecules in flight; fetching pauses at it (one fetch may "
        "overshoot it by up to its own size).",
    )
    max_record_bytes: int = Field(
        MIB,
        ge=1,
        description="Larger records (key, value and headers together) are dead letters before "
        "any decode (Kafka's default max.message.bytes).",
    )
    max_id_length: int = Field(
        256,
        ge=1,
        description="Longer molecule ids (characters) and record keys (bytes) are dead letters.",
    )
    max_header_count: int = Field(
        64, ge=0, description="Records with more headers are dead letters."
    )
    max_header_bytes: int = Field(
        64 * KIB,
        ge=0,
        description="Records whose headers (keys and values) are larger are dead letters.",
    )
    fetch_max_bytes: int = Field(
        50 * MIB,
        ge=1,
        description="Most bytes one fetch from the brokers returns (Kafka's default).",
    )
    max_partition_fetch_bytes: int = Field(
        MIB,
        ge=1,
        description="Most bytes one fetch returns per partition (Kafka's default); the broker "
        "still returns a larger first record batch.",
    )

    @model_validator(mode="after")
    def _check_bytes(self) -> Self:
        if self.max_partition_fetch_bytes > self.fetch_max_bytes:
            raise ValueError(
                f"--max-partition-fetch-bytes {self.max_partition_fetch_bytes} exceeds "
                f"--fetch-max-bytes {self.fetch_max_bytes}"
            )
        if self.max_in_flight_bytes < self.max_record_bytes:
            raise ValueError(
                f"--max-in-flight-bytes {self.max_in_flight_bytes} is below --max-record-bytes "
                f"{self.max_record_bytes}: one admitted record would fill the window"
            )
        return self

    @property
    def record_limits(self) -> RecordLimits:
        """The bounds every fetched record is screened against."""
        return RecordLimits(
            max_record_bytes=self.max_record_bytes,
            max_key_bytes=self.max_id_length,
            max_header_count=self.max_header_count,
            max_header_bytes=self.max_header_bytes,
        )
