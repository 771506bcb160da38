"""AsyncStream: the asyncio twin of Stream (emit stays synchronous and instant)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tokenrelay.results import StopResult

if TYPE_CHECKING:
    from producers.stream import StopHandle, Stream


class AsyncStream:
    """Wraps a Stream; the calls that touch Redis run in a thread, off the event loop."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.id = stream.id

    def emit(self, token: str) -> None:
        """Append a token (never blocks the loop)."""
        self.stream.emit(token)

    async def tool_message(self, text: str) -> None:
        await asyncio.to_thread(self.stream.tool_message, text)

    async def take(self) -> str:
        return await asyncio.to_thread(self.stream.take)

    async def stop(self, timeout: float = 30.0) -> StopResult:
        """Stop and await the result; waiting holds no thread and no connection."""
        handle: StopHandle = await asyncio.to_thread(self.stream.stop, timeout, False)  # type: ignore[assignment]
        return await handle.aresult(timeout)
