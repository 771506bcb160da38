"""The Discord sandbox of the test session (its env reaches every worker)."""

from __future__ import annotations

import pytest

__all__ = ["ENV_FIXTURE", "discord"]

ENV_FIXTURE = "discord"
#: bot token the Discord sandbox accepts in tests (fake, loopback only)
DISCORD_TOKEN = "sandbox.discord.test-token"


@pytest.fixture(scope="session")
def discord():
    from sandbox.discord import DiscordEmulator

    with DiscordEmulator(token=DISCORD_TOKEN, route_window=1.0) as emu:
        yield emu
