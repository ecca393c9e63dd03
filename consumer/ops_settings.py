"""How ``molstream consume`` shows itself to operators: metrics, logs and traces (settings,
each a ``--option`` and a ``MOLSTREAM_*`` variable)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OpsSettings(BaseSettings):
    """The Prometheus endpoint, the log lines, OpenTelemetry tracing."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    metrics_host: str = Field("127.0.0.1", description="Address of the Prometheus endpoint.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of the Prometheus endpoint; unset: none."
    )
    otel: bool = Field(
        False,
        description="Trace with OpenTelemetry (the otel extra), exported over OTLP as the "
        "OTEL_EXPORTER_OTLP_* variables say; on also when one of them names an endpoint.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Log lines: JSON, console, or auto (console on a terminal)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged."
    )


_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_env(settings: OpsSettings, environ: Mapping[str, str]) -> dict[str, str] | None:
    """The ``OTEL_*`` variables tracing runs with (the workers get them too), or None when
    tracing is off: off unless ``--otel`` or an OTLP endpoint (or exporter) is configured."""
    env = {k: v for k, v in environ.items() if k.startswith("OTEL_")}
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    wanted = settings.otel or any(env.get(k) for k in _OTLP_ENDPOINTS)
    return env if wanted or env.get("OTEL_TRACES_EXPORTER") == "otlp" else None
