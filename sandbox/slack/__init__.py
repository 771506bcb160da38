"""Loopback emulator of the Slack Web API (chat.* methods and native streams), for tests and
the demo::

    with SlackEmulator(token="xoxb-1") as slack:
        requests.post(f"{slack.api_base}/chat.postMessage", json={"channel": "C1", "text": "hi"},
                      headers={"Authorization": "Bearer xoxb-1"})
        assert slack.texts("C1") == ["hi"]

Modules: ``mrkdwn`` (what Slack shows for a text), ``loopback`` (the REST dialect shared with
the Discord emulator, on ``sandbox.loopback``), ``server`` (the methods and their limits).
"""

from sandbox.slack.server import SlackEmulator, SlackKnobs, message_ts

__all__ = ["SlackEmulator", "SlackKnobs", "message_ts"]
