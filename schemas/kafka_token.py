"""aiokafka's ``sasl_oauth_token_provider`` over a token source (apart, so that settings load
without importing aiokafka)."""

from __future__ import annotations

import asyncio

from aiokafka.abc import AbstractTokenProvider

from schemas.token_sources import TokenSource


class KafkaTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Asks a :class:`~schemas.token_sources.TokenSource` in a thread: a slow token endpoint
    never blocks the event loop."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    async def token(self) -> str:
        return await asyncio.to_thread(self.source.token)
