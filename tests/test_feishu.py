"""workers.channels.feishu and sandbox.feishu: card ids, sequences, error mapping, tokens, the
card markdown renderer, and the client against the emulator over real HTTP (no worker)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from sandbox.feishu import APP_ID, APP_SECRET, FeishuEmulator, shown_text
from tokenrelay.config import Settings
from tokenrelay.specs.feishu import FeishuSpec, LarkSpec
from workers.channels.base import (
    Call,
    MessageGone,
    PermanentFailure,
    RateLimited,
    TooLong,
    TransientFailure,
)
from workers.channels.feishu import (
    CardRef,
    FeishuClient,
    Limits,
    StreamingClosed,
    TenantToken,
    read_error,
    tenant_token,
)
from workers.channels.feishu_markdown import card_bytes, to_card_markdown
from workers.channels.http import Reply, Transport
from workers.channels.telegram_markdown import open_fence

CHAT = "oc_unit0001"
_FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})")


@pytest.fixture
def emulator() -> Iterator[FeishuEmulator]:
    with FeishuEmulator(app_id=APP_ID, app_secret=APP_SECRET, seed=2) as fe:
        yield fe


def make_client(emulator: FeishuEmulator, secret: str = APP_SECRET) -> FeishuClient:
    base = f"{emulator.base_url}/open-apis"
    transport = Transport(2.0)
    token = TenantToken(f"{base}/auth/v3/tenant_access_token/internal", APP_ID, secret, transport)
    return FeishuClient("feishu", "default", base, token, transport, Limits())


@pytest.fixture
def client(emulator: FeishuEmulator) -> FeishuClient:
    return make_client(emulator)


def reply(code: int, status: int = 400, **headers: str) -> Reply:
    return Reply(status, headers, {"code": code, "msg": f"message of {code}"})


# --- pure parts -------------------------------------------------------------------------


def test_card_message_ids_round_trip() -> None:
    ref = CardRef("om_abc", "7355", "reply", 1_700_000_000_000)
    assert CardRef.parse(str(ref)) == ref
    with pytest.raises(PermanentFailure):
        CardRef.parse("om_abc")


def test_sequences_increase_within_and_across_processes() -> None:
    ref = CardRef("om_x", f"seq{time.time_ns()}", "reply", int(time.time() * 1000) - 5)
    seen = [ref.sequence() for _ in range(50)]
    assert all(b > a for a, b in itertools.pairwise(seen))
    other_process = CardRef("om_x", "other-card", "reply", ref.created_ms)
    assert other_process.sequence() >= 5, "another worker starts from the card's age"
    assert 0 < CardRef("om_y", "c", "reply", int(time.time() * 1000)).sequence() < 2**31


def test_errors_are_mapped_once_with_their_data() -> None:
    limited = read_error("card.content", reply(99991400, 429, **{"x-ogw-ratelimit-reset": "3"}))
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
    assert isinstance(read_error("send", reply(230020)), RateLimited)
    assert isinstance(read_error("card.content", reply(300309)), StreamingClosed)
    assert isinstance(read_error("card.content", reply(200850)), StreamingClosed)
    for code in (200740, 200750, 230011):
        assert isinstance(read_error("card.content", reply(code)), MessageGone), code
    assert isinstance(read_error("card.content", reply(200860)), TooLong)
    assert isinstance(read_error("card.content", reply(300317)), TransientFailure)
    unknown = read_error("send", reply(12345))
    assert isinstance(unknown, PermanentFailure) and unknown.code == 12345
    assert "code 12345" in str(unknown) and "message of 12345" in str(unknown)
    assert isinstance(read_error("send", reply(99991663)), PermanentFailure)


def test_chat_ids_and_the_lark_base() -> None:
    spec = FeishuSpec(Settings())
    for good in ("oc_a1b2", "ou_7d8a6e6df7621556ce0d21922b676706", "on_x"):
        assert spec.normalize_chat_id(good) == good
    for bad in ("oc_", "chat", "og_abc", 42, "oc_a b"):
        with pytest.raises(ValueError, match="oc_ chat id"):
            spec.normalize_chat_id(bad)
    assert LarkSpec.default_base == "https://open.larksuite.com/open-apis"
    assert FeishuSpec.default_base == "https://open.feishu.cn/open-apis"


def test_card_markdown_neutralises_tags_but_not_code() -> None:
    assert to_card_markdown("<at id=all></at> & x") == "&lt;at id=all&gt;&lt;/at&gt; &amp; x"
    assert to_card_markdown("> quoted a > b") == "> quoted a &gt; b"
    assert to_card_markdown("```html\n<b>x</b>\n```") == "```html\n<b>x</b>\n```"
    assert to_card_markdown("```py\nx = 1") == "```py\nx = 1\n```"
    assert card_bytes("é\n") == 4  # two UTF-8 bytes, and "\n" is two in JSON


def _valid_card_markdown(markdown: str) -> None:
    """Fences balanced, and no raw < & outside them (entities only)."""
    fence = None
    for line in markdown.split("\n"):
        match = _FENCE_LINE.match(line)
        if fence is None and match and not (
            match.group(1)[0] == "`" and "`" in line[match.end():]
        ):
            fence = match.group(1)
        elif fence is not None and line.strip() and line.strip() == fence[0] * len(
            line.strip()
        ) and len(line.strip()) >= len(fence):
            fence = None
        elif fence is None:
            assert "<" not in line and not re.search(r"&(?!amp;|lt;|gt;)", line), line
    assert fence is None, markdown


@given(st.text(alphabet="ab <>&`~*\n_é", max_size=80), st.data())
def test_any_cut_gives_valid_chunks_that_show_the_input(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    head, tail = text[:cut], text[cut:]
    lead = open_fence(head)
    shown = []
    for chunk, strip in ((head, ""), (lead + tail, lead)):
        rendered = to_card_markdown(chunk)
        _valid_card_markdown(rendered)
        visible = shown_text(rendered)
        closer = visible[len(chunk):]
        assert visible.startswith(chunk), (chunk, visible)
        assert closer == "" or re.fullmatch(r"\n(`{3,}|~{3,})", closer), (chunk, visible)
        shown.append(visible[len(strip) : len(chunk)])
    assert "".join(shown) == text


# --- tokens -------------------------------------------------------------------------------


def test_a_token_is_fetched_once_by_many_threads(emulator) -> None:
    base = f"{emulator.base_url}/open-apis"
    token = tenant_token(base, APP_ID, APP_SECRET, Transport(2.0))
    assert tenant_token(base, APP_ID, APP_SECRET, Transport(2.0)) is token
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(token.get())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and emulator.tokens_issued() == 1


def test_a_token_is_refreshed_before_it_expires(emulator, client) -> None:
    emulator.configure(token_ttl=0.6, card_rate=1000.0, card_burst=1000)
    message_id = client.send(CHAT, "one", "text", call=Call(key="a" * 25))
    deadline = time.monotonic() + 1.5
    n = 0
    while time.monotonic() < deadline:  # keep editing past two lifetimes of a token
        n += 1
        client.edit(CHAT, message_id, f"one {n}", "text", call=Call(key="a" * 25))
    assert emulator.tokens_issued() >= 3
    assert emulator.count(status=400) == 0, "never used an expired token"


def test_a_revoked_token_is_fetched_again_once(emulator, client) -> None:
    message_id = client.send(CHAT, "one", "text", call=Call(key="b" * 25))
    emulator.revoke_tokens()
    client.edit(CHAT, message_id, "one two", "text", call=Call(key="b" * 25))
    assert emulator.texts(CHAT) == ["one two"] and emulator.tokens_issued() == 2


def test_a_wrong_secret_is_a_permanent_failure(emulator) -> None:
    with pytest.raises(PermanentFailure, match="code 10014"):
        make_client(emulator, secret="wrong-secret").send(CHAT, "hi", "text")


# --- the client against the emulator ----------------------------------------------------


def test_a_card_streams_then_its_streaming_mode_ends(emulator, client) -> None:
    call = Call(key="c" * 25)
    message_id = client.send(CHAT, "Hello", "markdown", call=call)
    client.edit(CHAT, message_id, "Hello world", "markdown", call=call)
    [message] = emulator.messages(CHAT)
    assert message.extra["streaming"] is True
    client.edit(CHAT, message_id, "Hello world, done.", "markdown", final=True, call=call)
    [message] = emulator.messages(CHAT)
    assert [t for _, t in message.history] == ["Hello", "Hello world", "Hello world, done."]
    assert message.extra["streaming"] is False
    assert message_id.startswith(message.message_id + ":")


def test_the_emulator_refuses_a_sequence_that_does_not_increase(emulator, client) -> None:
    ref = CardRef.parse(client.send(CHAT, "x", "text"))
    token = client._token.get()
    url = f"{emulator.base_url}/open-apis/cardkit/v1/cards/{ref.card_id}/elements/reply/content"
    headers = {"Authorization": f"Bearer {token}"}
    first = requests.put(url, json={"content": "x1", "sequence": 5, "uuid": "u1"},
                         headers=headers)
    assert first.json()["code"] == 0
    again = requests.put(url, json={"content": "x2", "sequence": 5, "uuid": "u2"},
                         headers=headers)
    assert again.json()["code"] == 300317
    replay = requests.put(url, json={"content": "x1", "sequence": 5, "uuid": "u1"},
                          headers=headers)
    assert replay.json()["code"] == 0, "a repeated uuid is an operation already done"
    assert emulator.texts(CHAT) == ["x1"]


def test_more_than_ten_updates_a_second_are_refused(emulator, client) -> None:
    message_id = client.send(CHAT, "x", "text")
    with pytest.raises(RateLimited) as info:
        for i in range(30):
            client.edit(CHAT, message_id, f"x{i}", "text")
    assert info.value.retry_after >= 1


def test_a_card_over_its_size_is_too_long(emulator, client) -> None:
    emulator.configure(max_card_bytes=2000)
    message_id = client.send(CHAT, "short", "text")
    with pytest.raises(TooLong):
        client.edit(CHAT, message_id, "é" * 1500, "text")
    with pytest.raises(TooLong):
        client.send(CHAT, "é" * 1500, "text")


def test_a_recalled_message_is_gone_at_the_final_edit(emulator, client) -> None:
    message_id = client.send(CHAT, "soon recalled", "text")
    emulator.recall(CHAT, CardRef.parse(message_id).message_id)
    with pytest.raises(MessageGone):
        client.edit(CHAT, message_id, "soon recalled, more", "text", final=True)


def test_a_card_whose_streaming_timed_out_is_reopened(emulator, client) -> None:
    emulator.configure(streaming_timeout=0.2)
    message_id = client.send(CHAT, "before the tool call", "text")
    time.sleep(0.3)  # a long tool call: the scenario, not a synchronisation
    client.edit(CHAT, message_id, "before the tool call, and after", "text")
    assert emulator.texts(CHAT) == ["before the tool call, and after"]
    assert emulator.count("card.content", 400) == 1
    assert emulator.count("card.batch_update", 200) == 1, "reopened with the text at once"


def test_a_bot_out_of_the_chat_is_permanent(emulator, client) -> None:
    emulator.remove_bot("oc_gone")
    with pytest.raises(PermanentFailure, match="230002"):
        client.send("oc_gone", "hi", "text")


def test_a_retried_send_is_the_message_its_lost_attempt_made(emulator, client) -> None:
    """A send whose answer was lost is retried with the same op key: the client posts the same
    card under the same message ``uuid``, so Feishu's de-dup answers with the first message
    (showing the retry's text) and the chat holds one message, not a copy."""
    first = client.send(CHAT, "Hello", "text", call=Call(key="r" * 25))
    again = client.send(CHAT, "Hello there", "text", call=Call(key="r" * 25))

    assert CardRef.parse(again).message_id == CardRef.parse(first).message_id
    [message] = emulator.messages(CHAT)
    assert message.text == "Hello there"
