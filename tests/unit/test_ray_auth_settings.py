"""--ray-auth-token-file: a file that exists, is not empty, and is the only token given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from consumer.errors import ConfigurationError
from consumer.pool.ray_runtime import AUTH_MODE_VAR, AUTH_TOKEN_VAR, use_auth_token_file
from consumer.settings import ConsumerSettings


def test_the_token_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ray_auth_token_file"):
        ConsumerSettings(ray_auth_token_file=tmp_path / "missing")
    token = tmp_path / "token"
    token.write_text("t0k3n", encoding="utf-8")
    settings = ConsumerSettings(ray_auth_token_file=token)
    assert settings.ray_auth_token_file == token


def test_an_empty_token_file_is_refused_before_ray_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AUTH_TOKEN_VAR, raising=False)
    monkeypatch.delenv(AUTH_MODE_VAR, raising=False)
    empty = tmp_path / "token"
    empty.write_text(" \n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"--ray-auth-token-file .* is empty"):
        use_auth_token_file(empty)
    assert AUTH_MODE_VAR not in os.environ


def test_a_token_in_the_environment_too_is_refused_without_printing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTH_TOKEN_VAR, "the-other-token")
    token = tmp_path / "token"
    token.write_text("t0k3n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as refused:
        use_auth_token_file(token)
    message = str(refused.value)
    assert "--ray-auth-token-file" in message and AUTH_TOKEN_VAR in message
    assert "t0k3n" not in message and "the-other-token" not in message
