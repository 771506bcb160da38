"""The Slack sandbox of the test session (its env reaches every worker)."""

from __future__ import annotations

import pytest

__all__ = ["ENV_FIXTURE", "slack"]

ENV_FIXTURE = "slack"
#: bot token the Slack sandbox accepts in tests (fake, loopback only)
SLACK_TOKEN = "xoxb-1-sandbox-test-token"


@pytest.fixture(scope="session")
def slack():
    from sandbox.slack import SlackEmulator

    with SlackEmulator(token=SLACK_TOKEN, update_per_minute=600.0, update_burst=20,
                       post_rate=5.0) as emu:
        yield emu
