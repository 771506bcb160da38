"""Plain webhooks: channels that cannot edit (WeCom/DingTalk robots, SMS and e-mail gateways).

Each message is one ``POST {url}`` of ``{"chat_id": …, "text": …}`` (with ``Authorization:
Bearer <token>`` when TOKENRELAY_WEBHOOK_BOT_TOKEN is set). Because a sent message can never
change, the core delivers whole messages: the text so far plus the notice at each tool-call
boundary, and the rest at stop.
"""

from __future__ import annotations

import uuid
from typing import Any

from tokenrelay.accounts import credential
from tokenrelay.config import ConfigError
from tokenrelay.redact import redact, register_secret
from tokenrelay.specs.webhook import MAX_CHARS, WebhookSpec
from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    ChannelError,
    Format,
    OpKind,
    PermanentFailure,
    RateLimited,
    Rejected,
    WholeMessages,
)
from workers.channels.http import Reply, Transport
from workers.planner.split import char_units

#: messages per second one webhook URL may take
RATE = 1.0

CAPABILITIES = Capabilities(can_edit=False, max_units=MAX_CHARS, units=char_units)


class WebhookClient(WholeMessages):
    """Posts whole messages; never edits."""

    name = "webhook"
    capabilities = CAPABILITIES

    def __init__(self, url: str, token: str | None, account: str, transport: Transport) -> None:
        register_secret(url)
        if token:
            register_secret(token)
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.account = account
        self.transport = transport

    def __repr__(self) -> str:
        return f"WebhookClient(account={self.account!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        return [Budget(f"webhook:{self.account}", "url", RATE, 3)]

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        body = {"chat_id": chat_id, "text": text}
        if call.key:
            body["idempotency_key"] = call.key
        headers = {**self._headers, "Idempotency-Key": call.key} if call.key else self._headers
        reply = self.transport.post_json(self._url, body, headers=headers, idempotent=False)
        if 200 <= reply.status < 300:
            return str(reply.body.get("id") or reply.body.get("message_id") or uuid.uuid4().hex)
        raise read_error(reply)


def read_error(reply: Reply) -> ChannelError:
    """Map a webhook's HTTP error to the core's error types."""
    body: dict[str, Any] = reply.body
    detail = redact(str(body.get("error") or body.get("description") or f"HTTP {reply.status}"))
    if reply.status == 429:
        return RateLimited(float(reply.headers.get("Retry-After") or 1), f"webhook: {detail}")
    if reply.status in (401, 403, 404, 410):
        return PermanentFailure(f"webhook: {detail}")
    return Rejected(f"webhook: {detail}")


def build(spec: WebhookSpec, account: str) -> WebhookClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    url = credential(spec.name, account, kind="URL")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"webhook account {account!r}: the URL must be http(s)")
    try:
        token: str | None = credential(spec.name, account)
    except ConfigError:
        token = None
    return WebhookClient(url, token, account, Transport(spec.settings.http_timeout))


