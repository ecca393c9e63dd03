"""Settings of ``molstream produce``, ``results`` and ``redrive`` that are more than their own
options: the brokers and the Schema Registry (every field a ``--option`` and a
``MOLSTREAM_*`` variable)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from schemas.kafka import KafkaSettings, ProducerSettings
from schemas.registry_settings import RegistrySettings, RegistryWriterSettings


class ProduceSettings(RegistryWriterSettings, ProducerSettings):
    """Brokers and registry of ``molstream produce``, and the framing it writes."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )


class ResultsSettings(RegistrySettings, KafkaSettings):
    """Brokers and registry of ``molstream results`` (it reads both framings)."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )


class RedriveSettings(ProducerSettings):
    """Brokers and producer of ``molstream redrive`` (it copies bytes: no registry needed)."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )
