"""aiokafka's ``sasl_oauth_token_provider`` over a token source (apart, so that settings load
without importing aiokafka)."""

from __future__ import annotations

import asyncio

from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import SaslAuthenticationFailed

from schemas.token_sources import TokenRefusedError, TokenSource


class KafkaTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Asks a :class:`~schemas.token_sources.TokenSource` in a thread: a slow token endpoint
    never blocks the event loop. A refused source fails the login as a SASL failure and is
    kept for :meth:`refused`."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source
        self._refused: asyncio.Future[None] | None = None

    async def token(self) -> str:
        try:
            return await asyncio.to_thread(self.source.token)
        except TokenRefusedError as exc:
            refusal = self._refusal()
            if not refusal.done():
                refusal.set_exception(exc)
                refusal.exception()  # raised here too: no warning when nothing watches
            # After bootstrap, aiokafka handles only a KafkaError, an OSError or a timeout
            # from opening a connection: anything else kills its fetcher routine unseen.
            raise SaslAuthenticationFailed(str(exc)) from exc

    async def refused(self) -> None:
        """Wait until the token source is refused (a rotated client secret, withdrawn
        credentials), then raise that :class:`TokenRefusedError`: a routine of the service,
        since aiokafka retries a failed reconnect for good."""
        await asyncio.shield(self._refusal())

    def _refusal(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()  # a command may run several loops in turn
        if self._refused is None or self._refused.get_loop() is not loop:
            self._refused = loop.create_future()
        return self._refused
