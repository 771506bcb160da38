"""Stream ids: what one may look like (it appears in Redis keys, task arguments and logs)."""

from __future__ import annotations

import re

#: 1-100 of [A-Za-z0-9_.:-], matched in full (a trailing newline is not part of an id)
STREAM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def validate_stream_id(stream_id: object) -> str:
    """``stream_id`` itself when it is a valid stream id; ValueError saying why not."""
    if not isinstance(stream_id, str) or not STREAM_ID.fullmatch(stream_id):
        raise ValueError(f"invalid stream id {stream_id!r}: use 1-100 of [A-Za-z0-9_.:-]")
    return stream_id
