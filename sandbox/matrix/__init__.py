"""Loopback emulator of the Matrix client-server API (rooms, m.room.message, m.replace edits,
redactions, txn-id idempotency, M_LIMIT_EXCEEDED), for tests and the demo::

    with MatrixEmulator() as hs:
        ...  # PUT {hs.base_url}/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1
        assert hs.texts("!r:x") == ["hi"]

``loopback`` holds the JSON dialect shared with the Feishu emulator (on ``sandbox.loopback``).
"""

from sandbox.matrix.emulator import MatrixEmulator, MatrixKnobs

__all__ = ["MatrixEmulator", "MatrixKnobs"]
