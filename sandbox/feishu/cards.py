"""CardKit card entities as the Feishu emulator holds them: parsing, size, what a card shows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Card", "CardError", "card_size", "shown_text"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
#: element tags whose text can be streamed
TEXT_TAGS = frozenset({"markdown", "plain_text"})


class CardError(Exception):
    """A card JSON the platform refuses: Feishu ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass
class Card:
    """One card entity: its JSON, its streaming mode and its operation sequence."""

    card_id: str
    app_id: str
    body: dict[str, Any]  #: the card JSON 2.0
    created_at: float  #: time.monotonic()
    streaming_since: float | None  #: when streaming mode was turned on; None when off
    last_sequence: int = 0
    uuids: set[str] = field(default_factory=set)
    message: tuple[str, str] | None = None  #: (chat id, message id) it was sent as

    @classmethod
    def parse(cls, card_id: str, app_id: str, data: object, now: float) -> Card:
        """A card from the ``data`` string of ``POST /cardkit/v1/cards``; CardError if bad."""
        if not isinstance(data, str) or not data.strip():
            raise CardError(300307, "The card DSL is empty")
        try:
            body = json.loads(data)
        except ValueError:
            raise CardError(200220, "Failed to generate card content") from None
        if not isinstance(body, dict) or body.get("schema") != "2.0":
            raise CardError(200220, "Failed to generate card content: schema must be 2.0")
        elements = (body.get("body") or {}).get("elements")
        if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
            raise CardError(200220, "Failed to generate card content: body.elements")
        config = body.setdefault("config", {})
        if config.get("update_multi") is False:
            raise CardError(300302, "update_multi property is false")
        streaming = bool(config.get("streaming_mode"))
        return cls(card_id, app_id, body, now, now if streaming else None)

    def element(self, element_id: str) -> dict[str, Any] | None:
        for element in self.body["body"]["elements"]:
            if element.get("element_id") == element_id:
                return element
        return None

    def set_streaming(self, on: bool, now: float) -> None:
        self.body["config"]["streaming_mode"] = on
        self.streaming_since = now if on else None

    def text(self) -> str:
        """What the card shows: its text elements' visible text, one per line."""
        return "\n".join(
            shown_text(str(e.get("content", "")))
            if e.get("tag") == "markdown" else str(e.get("content", ""))
            for e in self.body["body"]["elements"]
            if e.get("tag") in TEXT_TAGS
        )


def card_size(body: dict[str, Any]) -> int:
    """The card's size as the 30 KB limit counts it: bytes of its JSON."""
    return len(json.dumps(body, ensure_ascii=False).encode())


def shown_text(markdown: str) -> str:
    """A markdown element's text as shown, as far as tests judge it: the HTML entities
    ``&lt;`` ``&gt;`` ``&amp;`` are decoded outside code fences (inside, text is literal)."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
            else:
                for entity, char in _ENTITIES:
                    line = line.replace(entity, char)
        elif match and line.strip() == fence[0] * len(line.strip()) and len(line.strip()) >= len(
            fence
        ):
            fence = None
        out.append(line)
    return "\n".join(out)
