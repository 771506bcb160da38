"""The Matrix sandbox of the test session (see tests/platforms/__init__.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from sandbox.matrix import MatrixEmulator

__all__ = ["ENV_FIXTURE", "matrix", "room_id"]

ENV_FIXTURE = "matrix"
#: the access token the session's homeserver accepts (fake, loopback only)
MATRIX_TOKEN = "syt_dG9rZW5yZWxheQ_sandbox"
_rooms = itertools.count(1)


@pytest.fixture(scope="session")
def matrix() -> Iterator[MatrixEmulator]:
    with MatrixEmulator(access_token=MATRIX_TOKEN) as homeserver:
        yield homeserver


@pytest.fixture
def room_id(matrix: MatrixEmulator) -> str:
    """A room nobody else in the session uses."""
    return f"!room{next(_rooms)}:sandbox.local"
