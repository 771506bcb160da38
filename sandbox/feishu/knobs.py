"""The Feishu emulator's settings: every knob ``configure`` can change at runtime."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.loopback import FaultKnobs

__all__ = ["FeishuKnobs"]


@dataclass(frozen=True)
class FeishuKnobs(FaultKnobs):
    """Limits default to Feishu's documented ones; every one can be changed for a test (the
    fault knobs included)."""

    app_id: str | None = None  #: the only app accepted; None accepts any ``cli_…`` id
    app_secret: str | None = None  #: the app's secret; None accepts any non-empty one
    token_ttl: float = 7200.0  #: seconds a tenant access token lives
    card_rate: float = 10.0  #: operations per second per card
    card_burst: int = 10
    chat_rate: float = 5.0  #: messages per second per chat
    chat_burst: int = 5
    max_card_bytes: int = 30 * 1024  #: a card's JSON size limit
    streaming_timeout: float = 600.0  #: seconds streaming mode stays on before it closes itself

    def validated(self) -> FeishuKnobs:
        super().validated()
        for name in ("token_ttl", "card_rate", "chat_rate", "streaming_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("card_burst", "chat_burst", "max_card_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        return self
