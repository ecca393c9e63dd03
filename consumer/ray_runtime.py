"""Connecting this process to Ray: a local single-node Ray, or an existing cluster."""

from __future__ import annotations

import ipaddress
import logging

import ray

LOOPBACK = "127.0.0.1"


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(address: str | None, node_ip: str | None = None) -> bool:
    """Join the cluster at ``address``, or start a local Ray on 127.0.0.1 when it is None.

    Returns True when this call connected (the caller disconnects with :func:`disconnect`),
    False when Ray was already initialised by someone else.
    """
    if ray.is_initialized():
        return False
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
