"""Slack Web API: chat.postMessage / chat.update, native streams, limits and error shapes.

A message's id is its ``ts``. With ``native=True`` in a DM (``D…``) or a thread, a reply
streams through chat.startStream / chat.appendStream (only the new text) / chat.stopStream;
when Slack refuses a stream or ends it mid-reply (``message_not_in_streaming_state``), the
same message goes on with chat.update, so no text is lost or shown twice.

Limits: text is counted in characters after mrkdwn escaping (4,000 by default, well under
Slack's 40,000 truncation); chat.postMessage about 1/s per channel; chat.update is Tier 3,
about 50/min per app per workspace, which is what one account (one bot token) is. Every
number is a per-account setting read through ``tokenrelay.accounts.lookup``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import OrderedDict
from typing import Any

from tokenrelay.redact import redact, register_secret
from tokenrelay.specs.slack import MAX_CHARS, SlackSpec
from workers.channels.base import (
    NO_CALL,
    Budget,
    Call,
    Capabilities,
    ChannelError,
    Format,
    MessageGone,
    NotModified,
    OpKind,
    PermanentFailure,
    RateLimited,
    Rejected,
    RenderedMarkdown,
    TooLong,
    TransientFailure,
)
from workers.channels.http import Reply, Transport
from workers.channels.slack_markdown import ZWSP, mrkdwn_units, plain_mrkdwn, to_mrkdwn

DEFAULT_API_BASE = "https://slack.com/api"
#: chat.postMessage calls per second per channel
POST_RATE = 1.0
#: chat.update calls per minute per app per workspace (Tier 3)
UPDATE_PER_MINUTE = 50.0
TOKEN = re.compile(r"^xox[abpe]-[A-Za-z0-9-]+$")
#: errors that mean nothing can be delivered with this token to this conversation
ACCOUNT_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied",
    "team_access_not_granted", "channel_not_found", "not_in_channel", "is_archived",
    "restricted_action", "org_login_required", "invalid_auth_method",
})
#: Slack's own passing troubles: worth another try later
SERVER_ERRORS = frozenset({
    "internal_error", "fatal_error", "service_unavailable", "request_timeout",
})
#: remembered native streams per client (oldest forgotten first)
MAX_STREAMS = 10_000


class StreamEnded(Rejected):
    """The native stream is over (expired, idle or stopped): go on with chat.update."""


def is_native_target(chat_id: str, call: Call) -> bool:
    """Slack streams into DMs and threads; channels need a recipient, which we don't know."""
    return call.native and (chat_id.startswith("D") or bool(call.thread))


class SlackClient(RenderedMarkdown):
    """One bot token (one app in one workspace). Raises the error types of ``base``."""

    name = "slack"
    render_markdown = staticmethod(to_mrkdwn)

    def __init__(
        self,
        token: str,
        account: str,
        transport: Transport,
        *,
        api_base: str = DEFAULT_API_BASE,
        max_chars: int = MAX_CHARS,
        post_rate: float = POST_RATE,
        update_per_minute: float = UPDATE_PER_MINUTE,
    ) -> None:
        if not TOKEN.match(token):
            raise PermanentFailure(f"slack account {account!r}: malformed bot token")
        register_secret(token)
        self.account = account
        self.transport = transport
        self.capabilities = Capabilities(
            can_edit=True, max_units=max_chars, units=mrkdwn_units, can_delete=True
        )
        self._headers = {"Authorization": f"Bearer {token}"}
        self._base = api_base.rstrip("/")
        self._post_rate = post_rate
        self._update_rate = update_per_minute / 60.0
        #: (chat, ts) -> True while our native stream is live, False once it is not
        self._streams: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SlackClient(account={self.account!r}, api_base={self._base!r})"

    def budgets(
        self, chat_id: str, kind: OpKind = "send", message_id: str | None = None
    ) -> list[Budget]:
        # one account is one app in one workspace: the scope Slack's Tier 3 counts in
        scope = f"slack:{self.account}"
        return [
            Budget(scope, f"chat:{chat_id}", self._post_rate, 2),
            Budget(scope, "workspace:chat.update", self._update_rate, 5),
        ]

    # -- send / edit -----------------------------------------------------------------------

    def send(
        self, chat_id: str, text: str, fmt: Format, final: bool = False, call: Call = NO_CALL
    ) -> str:
        if is_native_target(chat_id, call) and not final:
            try:
                return self._start_stream(chat_id, text, call)
            except (Rejected, PermanentFailure) as exc:
                if exc.code in ACCOUNT_ERRORS:
                    raise
        payload = {"channel": chat_id, "text": render(text, fmt, final)}
        if call.thread:
            payload["thread_ts"] = call.thread
        body = self._call("chat.postMessage", payload, idempotent=False)
        return str(body["ts"])

    def edit(
        self,
        chat_id: str,
        message_id: str,
        text: str,
        fmt: Format,
        final: bool = False,
        call: Call = NO_CALL,
    ) -> str | None:
        key = (chat_id, message_id)
        if is_native_target(chat_id, call) and self._streams.get(key) is not False:
            try:
                self._stream_edit(key, text, final, call.previous)
                return None
            except StreamEnded:
                pass  # the message is an ordinary one now: update it as a whole
        self._call(
            "chat.update", {"channel": chat_id, "ts": message_id, "text": render(text, fmt, final)}
        )
        return None

    def delete(self, chat_id: str, message_id: str) -> None:
        self._call("chat.delete", {"channel": chat_id, "ts": message_id})

    # -- native streams ----------------------------------------------------------------------

    def _start_stream(self, chat_id: str, text: str, call: Call) -> str:
        if not text.strip():
            raise Rejected("nothing visible to send yet")
        payload = {"channel": chat_id, "markdown_text": text}
        if call.thread:
            payload["thread_ts"] = call.thread
        body = self._call("chat.startStream", payload, idempotent=False)
        ts = str(body["ts"])
        self._remember((chat_id, ts), True)
        return ts

    def _stream_edit(self, key: tuple[str, str], text: str, final: bool, previous: str) -> None:
        """Append only what is new; stop the stream at ``final``. StreamEnded when the text
        cannot go on as a stream (it does not extend what the message shows)."""
        if not text.startswith(previous) or not previous:
            self._stop_quietly(key)
            raise StreamEnded("the text does not extend the stream")
        delta = text[len(previous):]
        chat_id, ts = key
        payload = {"channel": chat_id, "ts": ts}
        if delta:
            payload["markdown_text"] = delta
        elif not final:
            raise NotModified("nothing new to append")
        try:
            self._call("chat.stopStream" if final else "chat.appendStream", payload,
                       idempotent=False)
        except (TransientFailure, StreamEnded):
            # an append whose answer was lost may have landed: never append on top of it
            self._remember(key, False)
            raise
        self._remember(key, not final)

    def _stop_quietly(self, key: tuple[str, str]) -> None:
        """End a stream we will update as a whole (an ended stream is fine)."""
        if self._streams.get(key) is False:
            return
        self._remember(key, False)
        with contextlib.suppress(StreamEnded, MessageGone):
            self._call("chat.stopStream", {"channel": key[0], "ts": key[1]}, idempotent=False)

    def _remember(self, key: tuple[str, str], live: bool) -> None:
        with self._lock:
            self._streams[key] = live
            self._streams.move_to_end(key)
            while len(self._streams) > MAX_STREAMS:
                self._streams.popitem(last=False)

    # -- wire --------------------------------------------------------------------------------

    def _call(
        self, method: str, payload: dict[str, Any], idempotent: bool = True
    ) -> dict[str, Any]:
        reply = self.transport.post_json(
            f"{self._base}/{method}", payload, headers=self._headers, idempotent=idempotent
        )
        if reply.status == 200 and reply.body.get("ok") is True:
            return reply.body
        raise read_error(method, reply)


def render(text: str, fmt: Format, final: bool) -> str:
    """The ``text`` field for ``fmt``; Rejected when nothing would be visible."""
    if fmt == "markdown":
        rendered = to_mrkdwn(text, final=final)
        if not rendered.replace(ZWSP, "").strip():
            raise Rejected("nothing visible to send yet")
        return rendered
    return text if fmt == "html" else plain_mrkdwn(text)


def read_error(method: str, reply: Reply) -> ChannelError:
    """Map a Slack answer that is not ``ok`` to the core's error types (the one place)."""
    headers = {k.lower(): v for k, v in reply.headers.items()}
    error = redact(str(reply.body.get("error") or f"HTTP {reply.status}"))
    where = f"slack {method}: {error}"
    data: dict[str, Any] = {"method": method, "code": error, "description": error}
    if reply.status == 429 or error == "ratelimited":
        return RateLimited(float(headers.get("retry-after") or 1), where, **data)
    if error == "message_not_in_streaming_state":
        return StreamEnded(where, **data)
    if error in ("message_not_found", "cant_update_message", "edit_window_closed"):
        return MessageGone(where, **data)
    if error == "msg_too_long":
        return TooLong(where, **data)
    if error == "no_text":
        return Rejected(where, **data)
    if error in SERVER_ERRORS or reply.status >= 500:
        return TransientFailure(where, **data)
    return PermanentFailure(where, **data)


def build(spec: SlackSpec, account: str) -> SlackClient:
    """A client for ``account``, from its settings (``spec.setting``)."""
    def get(key: str, default: object) -> str:
        return spec.setting(account, key, default)

    return SlackClient(
        spec.setting(account, "BOT_TOKEN"),
        account,
        Transport(spec.settings.http_timeout),
        api_base=get("API_BASE", DEFAULT_API_BASE),
        max_chars=int(get("MAX_CHARS", str(MAX_CHARS))),
        post_rate=float(get("POST_RATE", str(POST_RATE))),
        update_per_minute=float(get("UPDATE_PER_MINUTE", str(UPDATE_PER_MINUTE))),
    )


