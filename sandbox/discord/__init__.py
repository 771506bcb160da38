"""Loopback emulator of the Discord REST API (channel messages), for tests and the demo::

    with DiscordEmulator(token="t") as discord:
        requests.post(f"{discord.api_base}/channels/112233445566778899/messages",
                      json={"content": "hi"}, headers={"Authorization": "Bot t"})
        assert discord.texts("112233445566778899") == ["hi"]

It shares the Slack emulator's REST dialect (``sandbox.slack.loopback``) and, with every
emulator, the HTTP shell and fault knobs of ``sandbox.loopback``.
"""

from sandbox.discord.server import ID_BASE, DiscordEmulator, DiscordKnobs, visible_text

__all__ = ["ID_BASE", "DiscordEmulator", "DiscordKnobs", "visible_text"]
