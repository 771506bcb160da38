"""workers.channels.matrix and sandbox.matrix: txn ids, error mapping, HTML rendering, and the
client against the emulator over real HTTP (no worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.matrix import MatrixEmulator
from tests.helpers import squash
from tests.test_telegram_markdown import assert_telegram_html
from tokenrelay.config import Settings
from tokenrelay.specs.matrix import MatrixSpec
from workers.channels.base import (
    Call,
    MessageGone,
    PermanentFailure,
    RateLimited,
    Rejected,
    TooLong,
    TransientFailure,
)
from workers.channels.http import Reply, Transport
from workers.channels.matrix import (
    MatrixClient,
    message_content,
    read_error,
    txn_id,
)
from workers.channels.telegram_markdown import open_fence, to_telegram_html, visible_text

TOKEN = "syt_unit_token"
ROOM = "!unit:sandbox.local"


@pytest.fixture
def homeserver() -> Iterator[MatrixEmulator]:
    with MatrixEmulator(access_token=TOKEN, seed=3) as hs:
        yield hs


@pytest.fixture
def client(homeserver: MatrixEmulator) -> MatrixClient:
    return MatrixClient(homeserver.base_url, TOKEN, "default", Transport(2.0))


def reply(status: int, **body: object) -> Reply:
    return Reply(status, {}, dict(body))


# --- pure parts -------------------------------------------------------------------------


def test_txn_id_is_stable_per_key_op_and_content() -> None:
    content = message_content("hello", "text", False)
    assert txn_id("k" * 25, "send", content) == txn_id("k" * 25, "send", dict(content))
    assert txn_id("k" * 25, "send", content) != txn_id("k" * 25, "edit", content)
    assert txn_id("k" * 25, "edit", content) != txn_id(
        "k" * 25, "edit", message_content("hello!", "text", False)
    )
    assert txn_id("a" * 25, "send", content) != txn_id("b" * 25, "send", content)
    assert all(c.isalnum() or c == "." for c in txn_id("k" * 25, "send", content))


def test_errors_are_mapped_once_with_their_data() -> None:
    limited = read_error("send", reply(429, errcode="M_LIMIT_EXCEEDED", retry_after_ms=1500))
    assert isinstance(limited, RateLimited) and limited.retry_after == 1.5
    assert limited.code == "M_LIMIT_EXCEEDED"
    for errcode, status in (("M_FORBIDDEN", 403), ("M_UNKNOWN_TOKEN", 401), ("M_WEIRD", 400)):
        error = read_error("send", reply(status, errcode=errcode, error="nope"))
        assert isinstance(error, PermanentFailure), errcode
        assert errcode in str(error) and error.code == errcode
    assert isinstance(read_error("send", reply(413, errcode="M_TOO_LARGE")), TooLong)
    assert isinstance(read_error("event", reply(404, errcode="M_NOT_FOUND")), MessageGone)


def test_markdown_becomes_html_with_its_visible_text_as_body() -> None:
    content = message_content("**Done**: see `x < y`", "markdown", final=True)
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == "<b>Done</b>: see <code>x &lt; y</code>"
    assert content["body"] == "Done: see x < y"
    assert message_content("a *b", "text", False) == {"msgtype": "m.text", "body": "a *b"}
    with pytest.raises(Rejected):
        message_content("**", "markdown", final=False)


def test_room_ids_are_checked() -> None:
    spec = MatrixSpec(Settings())
    assert spec.normalize_chat_id(" !abc:example.org ") == "!abc:example.org"
    for bad in ("abc:example.org", "!abc", "#alias:example.org", 42, "!a b:x"):
        with pytest.raises(ValueError, match="room id"):
            spec.normalize_chat_id(bad)


def _chunks(text: str, cut: int) -> list[str]:
    """``text`` split at ``cut`` the way the core splits: the second part reopens a fence."""
    head = text[:cut]
    return [head, open_fence(head) + text[cut:]]


@given(st.text(alphabet="ab *_`~[]()#>-\n\\<&", max_size=80), st.data())
def test_any_cut_gives_valid_html_chunks(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    for chunk in _chunks(text, cut):
        for final in (False, True):
            assert_telegram_html(_render(chunk, final))
            if visible_text(_render(chunk, final)).strip():
                content = message_content(chunk, "markdown", final)
                assert content["body"] == visible_text(content["formatted_body"])


@given(st.lists(st.text(alphabet="ab *_`~[]()#>-\\<&", max_size=12), max_size=8), st.data())
def test_a_cut_at_a_line_keeps_the_visible_text(lines: list[str], data: st.DataObject) -> None:
    """Inline markup never crosses a line, so chunks cut at a line boundary show, together,
    exactly what the whole text shows (whitespace aside: messages are trimmed)."""
    text = "\n".join(lines)
    cuts = [i + 1 for i, c in enumerate(text) if c == "\n"] or [len(text)]
    cut = data.draw(st.sampled_from(cuts))
    shown = "".join(visible_text(_render(c, True)) for c in _chunks(text, cut))
    assert squash(shown) == squash(visible_text(_render(text, True)))


@given(st.text(alphabet=st.characters(blacklist_characters="*_`~[]\\<>&#-+!"), max_size=60),
       st.data())
def test_any_cut_of_plain_prose_keeps_every_character(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    bodies = [
        message_content(c, "markdown", True)["body"] if c.strip() else c for c in _chunks(text, cut)
    ]
    assert "".join(bodies) == text


def _render(text: str, final: bool) -> str:
    return to_telegram_html(text, final=final)


# --- the client against the emulator ----------------------------------------------------


def test_send_then_edit_shows_the_new_content(homeserver, client) -> None:
    call = Call(key="a" * 25)
    event_id = client.send(ROOM, "Hello", "markdown", call=call)
    client.edit(ROOM, event_id, "Hello **world**", "markdown", final=True, call=call)
    [message] = homeserver.messages(ROOM)
    assert message.message_id == event_id
    assert [text for _, text in message.history] == ["Hello", "Hello world"]
    assert message.extra["formatted_body"] == "Hello <b>world</b>"


def test_a_retried_send_returns_the_same_event(homeserver, client) -> None:
    call = Call(key="b" * 25)
    first = client.send(ROOM, "once", "text", call=call)
    again = client.send(ROOM, "once", "text", call=call)
    assert first == again
    assert homeserver.texts(ROOM) == ["once"]
    assert len(homeserver.events(ROOM)) == 1


def test_a_send_retried_with_more_text_edits_the_first_event(homeserver, client) -> None:
    call = Call(key="h" * 25)
    first = client.send(ROOM, "the answer was lost", "text", call=call)
    again = client.send(ROOM, "the answer was lost, and text grew", "text", call=call)
    assert first == again
    assert homeserver.texts(ROOM) == ["the answer was lost, and text grew"]
    assert len([e for e in homeserver.events(ROOM) if "m.relates_to" not in e["content"]]) == 1


def test_lost_answers_never_create_a_second_event(homeserver, client) -> None:
    homeserver.configure(drop_after_rate=0.6, seed=11)
    try:
        for i in range(6):
            for _ in range(10):  # the core calls again, with the same key, after a failure
                try:
                    client.send(ROOM, f"message {i}", "text", call=Call(key=f"{i:025d}"))
                    break
                except TransientFailure:
                    continue
    finally:
        homeserver.configure(drop_after_rate=0.0)
    assert homeserver.texts(ROOM) == [f"message {i}" for i in range(6)]
    assert len(homeserver.events(ROOM)) == 6
    assert homeserver.count(status=0) > 0, "answers were lost"


def test_a_final_edit_of_a_redacted_message_is_message_gone(homeserver, client) -> None:
    event_id = client.send(ROOM, "soon gone", "text", call=Call(key="c" * 25))
    client.edit(ROOM, event_id, "soon gone, still here", "text", call=Call(key="c" * 25))
    homeserver.redact(ROOM, event_id)
    with pytest.raises(MessageGone):
        client.edit(ROOM, event_id, "soon gone, still here!", "text", final=True,
                    call=Call(key="c" * 25))


def test_rate_limit_answer_carries_retry_after(homeserver, client) -> None:
    homeserver.configure(room_rate=0.5, room_burst=1)
    client.send(ROOM, "one", "text", call=Call(key="d" * 25))
    with pytest.raises(RateLimited) as info:
        client.send(ROOM, "two", "text", call=Call(key="e" * 25))
    assert 0 < info.value.retry_after <= 2.0


def test_unknown_token_is_permanent(homeserver) -> None:
    stranger = MatrixClient(homeserver.base_url, "syt_wrong", "default", Transport(2.0))
    with pytest.raises(PermanentFailure, match="M_UNKNOWN_TOKEN"):
        stranger.send(ROOM, "hi", "text")


def test_forbidden_room_is_permanent_and_too_large_is_too_long(homeserver, client) -> None:
    homeserver.forbid("!closed:sandbox.local")
    with pytest.raises(PermanentFailure, match="M_FORBIDDEN"):
        client.send("!closed:sandbox.local", "hi", "text")
    homeserver.configure(max_event_bytes=1000)
    with pytest.raises(TooLong):
        client.send(ROOM, "x" * 2000, "text")


def test_delete_redacts(homeserver, client) -> None:
    event_id = client.send(ROOM, "bye", "text", call=Call(key="f" * 25))
    client.delete(ROOM, event_id)
    assert homeserver.texts(ROOM) == []
    assert homeserver.events(ROOM)[0]["redacted"]


def test_edit_of_an_unknown_event_is_refused(homeserver, client) -> None:
    with pytest.raises(PermanentFailure, match="M_BAD_JSON"):
        client.edit(ROOM, "$nope:sandbox.local", "x", "text", call=Call(key="g" * 25))
