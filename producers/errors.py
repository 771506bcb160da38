"""Exceptions a producer raises. All derive from TokenRelayError."""

from __future__ import annotations


class TokenRelayError(Exception):
    """Base class of tokenrelay's producer errors."""


class StreamClosed(TokenRelayError):
    """The stream was stopped: no more tokens can be emitted to it."""


class StreamTooLong(TokenRelayError, ValueError):
    """The token would take the stream past TOKENRELAY_MAX_STREAM_CHARS; it was not accepted."""


class StopTimeout(TokenRelayError, TimeoutError):
    """stop() did not see the final result in time; the workers keep delivering it."""


class BackendUnavailable(TokenRelayError, ConnectionError):
    """Redis (stream state) or the broker could not be reached; buffered text is kept."""
