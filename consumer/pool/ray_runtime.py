"""Connecting this process to Ray: a local single-node Ray, or an existing cluster."""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

import ray

from consumer.errors import ConfigurationError

LOOPBACK = "127.0.0.1"
AUTH_MODE_VAR = "RAY_AUTH_MODE"
AUTH_TOKEN_VAR = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_auth_token_file(path: Path) -> None:
    """Make this process (and the Ray processes it starts) authenticate with the token in
    ``path``: Ray reads ``RAY_AUTH_MODE`` and ``RAY_AUTH_TOKEN_PATH`` itself.

    Raises :class:`ConfigurationError` when the file is empty (Ray would abort the process) or
    when ``RAY_AUTH_TOKEN`` is set too (Ray would prefer it silently).
    """
    if os.environ.get(AUTH_TOKEN_VAR):
        raise ConfigurationError(
            f"--ray-auth-token-file {path} and {AUTH_TOKEN_VAR} are both set: give one token"
        )
    try:
        empty = not path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"--ray-auth-token-file {path}: unreadable ({exc})") from None
    if empty:
        raise ConfigurationError(f"--ray-auth-token-file {path} is empty")
    os.environ[AUTH_MODE_VAR] = "token"
    os.environ[AUTH_TOKEN_PATH_VAR] = str(path.resolve())
    # Ray caches its configuration and the token when first used: reload both (as Ray's own
    # _enable_token_auth does) so this process sees the mode just set.
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def connect(
    address: str | None, node_ip: str | None = None, auth_token_file: Path | None = None
) -> bool:
    """Join the cluster at ``address``, or start a local Ray on 127.0.0.1 when it is None;
    with ``auth_token_file``, authenticated by the token in that file.

    Returns True when this call connected (the caller disconnects with :func:`disconnect`),
    False when Ray was already initialised by someone else.
    """
    if ray.is_initialized():
        return False
    if auth_token_file is not None:
        use_auth_token_file(auth_token_file)
    if node_ip is None and (address is None or _is_loopback(address)):
        node_ip = LOOPBACK
    ray.init(
        address=address,
        _node_ip_address=node_ip,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        configure_logging=False,
    )
    return True


def disconnect() -> None:
    """Leave Ray (and stop the local Ray that :func:`connect` started, if any)."""
    if ray.is_initialized():
        ray.shutdown()
