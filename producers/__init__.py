"""tokenrelay producers: what an agent process uses to stream a reply into a chat.

    from producers import StreamProducer
    producer = StreamProducer()
    stream = producer.start(channel="telegram", chat_id="42")
    stream.emit("Hel"); stream.emit("lo")
    result = stream.stop(timeout=30)
"""

from producers.aio import AsyncStream
from producers.errors import (
    BackendUnavailable,
    StopTimeout,
    StreamClosed,
    StreamTooLong,
    TokenRelayError,
)
from producers.producer import StreamProducer
from producers.stream import StopHandle, Stream
from tokenrelay.results import StopResult
from tokenrelay.specs import UnknownChannel

__all__ = [
    "AsyncStream",
    "BackendUnavailable",
    "StopHandle",
    "StopResult",
    "StopTimeout",
    "Stream",
    "StreamClosed",
    "StreamProducer",
    "StreamTooLong",
    "TokenRelayError",
    "UnknownChannel",
]
