"""Loopback emulator of the Feishu/Lark Open API (tenant tokens, CardKit streaming cards,
interactive messages), for tests and the demo; see ``sandbox.feishu.emulator`` for what it
enforces. The same emulator serves Lark (only the base URL differs)."""

from sandbox.feishu.cards import Card, shown_text
from sandbox.feishu.emulator import APP_ID, APP_SECRET, FeishuEmulator, LarkEmulator
from sandbox.feishu.knobs import FeishuKnobs

__all__ = [
    "APP_ID", "APP_SECRET", "Card", "FeishuEmulator", "FeishuKnobs", "LarkEmulator", "shown_text",
]
