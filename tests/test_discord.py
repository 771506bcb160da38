"""Discord: error mapping, rate-limit headers, the invalid-request guard, markdown rendering
(property tests) and the nonce against the Discord sandbox."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.discord import DiscordEmulator
from tokenrelay.config import Settings
from tokenrelay.specs import get_spec
from workers.channels import base as errors
from workers.channels.discord import (
    DiscordClient,
    InvalidRequests,
    RateHeaders,
    read_error,
    read_rate_headers,
)
from workers.channels.discord_markdown import discord_units, escape, to_discord
from workers.channels.http import Reply, Transport
from workers.channels.slack_markdown import ZWSP
from workers.channels.telegram_markdown import open_fence, to_telegram_html
from workers.channels.telegram_markdown import visible_text as html_visible

TOKEN = "unit.discord.token"
CHAT = "112233445566778899"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MARKDOWN = st.lists(
    st.sampled_from([*"ab *_~`#>-+[]()\\|<\n", "https://x.io", "```py\n", "1. "]), max_size=40
).map("".join)


def _shown(markdown: str) -> str:
    """What a Markdown reader shows (Discord reads Markdown as CommonMark mostly does)."""
    return html_visible(to_telegram_html(markdown, final=True)).replace(ZWSP, "")


def _err(status: int, body: dict, headers: dict | None = None) -> Reply:
    return Reply(status, headers or {}, body)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (_err(429, {"message": "You are being rate limited.", "retry_after": 0.5,
                    "global": False}), errors.RateLimited),
        (_err(404, {"message": "Unknown Message", "code": 10008}), errors.MessageGone),
        (_err(400, {"message": "Invalid Form Body", "code": 50035, "errors": {"content": {
            "_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}}}), errors.TooLong),
        (_err(400, {"message": "Cannot send an empty message", "code": 50006}), errors.Rejected),
        (_err(401, {"message": "401: Unauthorized", "code": 0}), errors.PermanentFailure),
        (_err(403, {"message": "Missing Access", "code": 50001}), errors.PermanentFailure),
        (_err(404, {"message": "Unknown Channel", "code": 10003}), errors.PermanentFailure),
    ],
)
def test_error_replies_map_to_core_error_types(reply: Reply, kind: type) -> None:
    assert type(read_error("PATCH /channels/:id/messages/:id", reply)) is kind


def test_a_global_429_names_the_global_scope_with_float_seconds() -> None:
    body = {"message": "You are being rate limited.", "retry_after": 1.25, "global": True}
    err = read_error("POST /channels/:id/messages", _err(429, body))
    assert isinstance(err, errors.RateLimited)
    assert err.retry_after == 1.25 and err.scope == "global"
    local = read_error("POST", _err(429, {**body, "global": False}))
    assert local.scope is None  # type: ignore[attr-defined]


def test_rate_headers_are_parsed_in_any_case() -> None:
    parsed = read_rate_headers({
        "x-ratelimit-limit": "5", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": "1.5", "X-RateLimit-Bucket": "abc",
        "X-RateLimit-Global": "true", "X-RateLimit-Scope": "user",
    })
    assert parsed == RateHeaders(5, 0, 1.5, "abc", True, "user")
    assert read_rate_headers({"Content-Type": "application/json"}) is None
    assert read_rate_headers({"X-RateLimit-Remaining": "x"}) == RateHeaders()


def test_invalid_requests_are_counted_in_a_sliding_window() -> None:
    counter = InvalidRequests(window=600)
    for t in (0, 100, 599):
        counter.add(now=t)
    assert counter.count(now=599) == 3
    assert counter.count(now=650) == 2, "the first one left the window"


def test_spec_validates_snowflakes_and_budgets_share_one_scope() -> None:
    spec = get_spec("discord", Settings())
    assert spec.normalize_chat_id(int(CHAT)) == CHAT
    for bad in ("general", "12", "-112233445566778899", None):
        with pytest.raises(ValueError, match="discord chat_id"):
            spec.normalize_chat_id(bad)
    client = DiscordClient(TOKEN, "acme", Transport(1.0))
    budgets = client.budgets(CHAT) + client.budgets("998877665544332211")
    assert {b.scope for b in budgets} == {"discord:acme"}
    assert client.capabilities.max_units == 2000 and client.capabilities.idempotent_send


@pytest.mark.parametrize(
    ("markdown", "content"),
    [
        ("**Done**: 2*3", "**Done**: 2\\*3"),
        ("# Title\n*it* ~~x~~", "**Title**\n_it_ ~~x~~"),
        ("```py\nx = 1\n```", "```py\nx = 1\n```"),
        ("**half-writ", "**half-writ**"),
        ("see [docs](https://x.io)", "see [docs](https://x.io)"),
    ],
)
def test_examples(markdown: str, content: str) -> None:
    assert to_discord(markdown) == content


@FAST
@given(MARKDOWN, st.booleans())
def test_any_text_renders_to_markdown_showing_the_same_text(markdown: str, final: bool) -> None:
    html = to_telegram_html(markdown, final=final)
    rendered = to_discord(markdown, final=final)
    assert _shown(rendered) == html_visible(html).replace(ZWSP, "")
    assert len(to_discord(markdown, final=True)) <= discord_units(markdown)


@FAST
@given(st.text(max_size=60))
def test_plain_text_is_escaped_to_show_as_written(text: str) -> None:
    escaped = escape(text)
    # a zero-width space is invisible either way (the renderer uses it as its own escape)
    assert _shown(escaped) == html_visible(to_telegram_html(escaped, final=True)).replace(ZWSP, "")
    assert len(escaped) <= discord_units(text)


@FAST
@given(MARKDOWN, st.data())
def test_a_cut_at_a_line_keeps_fences_balanced_and_the_text_whole(
    markdown: str, data: st.DataObject
) -> None:
    cut = data.draw(st.sampled_from(
        [0, len(markdown), *(i + 1 for i, c in enumerate(markdown) if c == "\n")]
    ))
    head, tail = markdown[:cut], open_fence(markdown[:cut]) + markdown[cut:]
    chunks = [to_discord(part, final=True) for part in (head, tail)]
    for chunk in chunks:
        fences = [ln for ln in chunk.split("\n") if ln.startswith("```")]
        assert len(fences) % 2 == 0, chunk
    joined = "".join(_shown(c) for c in chunks)
    assert "".join(joined.split()) == "".join(_shown(markdown).split())


# --- against the sandbox -------------------------------------------------------------------


@pytest.fixture
def sandbox():
    with DiscordEmulator(token=TOKEN, route_limit=2, route_window=30.0) as emu:
        client = DiscordClient(TOKEN, "unit", Transport(2.0), api_base=emu.api_base,
                               invalid=InvalidRequests(), invalid_limit=3)
        yield emu, client


def test_a_repeated_nonce_returns_the_message_already_created(sandbox) -> None:
    emu, client = sandbox
    call = errors.Call(key="a" * 25)
    first = client.send(CHAT, "hello", "text", call=call)
    assert client.send(CHAT, "hello", "text", call=call) == first
    assert emu.texts(CHAT) == ["hello"]


def test_an_empty_bucket_is_observed_for_the_core_once(sandbox) -> None:
    emu, client = sandbox
    first = client.send(CHAT, "one", "text")
    assert client.observed(CHAT) == []
    client.edit(CHAT, first, "one two", "text")
    client.edit(CHAT, first, "one two three", "text")  # the edit bucket holds 2: now empty
    [(budget, seconds)] = client.observed(CHAT)
    assert budget == client.budgets(CHAT)[0] and 0 < seconds <= 30
    assert client.observed(CHAT) == [], "reported once"
    with pytest.raises(errors.RateLimited):
        client.edit(CHAT, first, "one two three four", "text")
    assert emu.texts(CHAT) == ["one two three"]


def test_the_client_stops_before_too_many_invalid_requests(sandbox) -> None:
    emu, _ = sandbox
    bad = DiscordClient("wrong", "bad", Transport(2.0), api_base=emu.api_base,
                        invalid=InvalidRequests(), invalid_limit=3)
    for _ in range(3):
        with pytest.raises(errors.PermanentFailure, match="Unauthorized"):
            bad.send(CHAT, "hi", "text")
    with pytest.raises(errors.PermanentFailure, match="invalid requests"):
        bad.send(CHAT, "hi", "text")
    assert emu.count(status=401) == 3, "the fourth call never left the process"
