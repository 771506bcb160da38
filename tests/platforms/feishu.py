"""The Feishu sandbox of the test session (see tests/platforms/__init__.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from sandbox.feishu import APP_ID, APP_SECRET, FeishuEmulator

__all__ = ["ENV_FIXTURE", "feishu", "feishu_chat"]

ENV_FIXTURE = "feishu"
_chats = itertools.count(1)


@pytest.fixture(scope="session")
def feishu() -> Iterator[FeishuEmulator]:
    with FeishuEmulator(app_id=APP_ID, app_secret=APP_SECRET) as emulator:
        yield emulator


@pytest.fixture
def feishu_chat(feishu: FeishuEmulator) -> str:
    """A group chat nobody else in the session uses."""
    return f"oc_sandbox{next(_chats):06d}"
