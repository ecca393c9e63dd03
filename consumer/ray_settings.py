"""How the consumer authenticates to its Ray cluster (settings of ``molstream consume``, each a
``--option`` and a ``MOLSTREAM_*`` variable)."""

from __future__ import annotations

from pydantic import Field, FilePath
from pydantic_settings import BaseSettings, SettingsConfigDict


class RayAuthSettings(BaseSettings):
    """Ray token authentication (``RAY_AUTH_MODE=token``): the token is read from a file, never
    given as a value, so that it appears in no command line and no process listing."""

    model_config = SettingsConfigDict(
        env_prefix="MOLSTREAM_", extra="forbid", hide_input_in_errors=True
    )

    ray_auth_token_file: FilePath | None = Field(
        None,
        description="File holding the Ray cluster's token (a Secret mount): joins with "
        "RAY_AUTH_MODE=token; unset: Ray's own RAY_AUTH_MODE, RAY_AUTH_TOKEN, "
        "RAY_AUTH_TOKEN_PATH.",
    )
