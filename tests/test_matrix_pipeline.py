"""End to end: producer -> Redis -> Celery worker -> Matrix sandbox, judged by its ledger."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import (
    SAMPLE,
    assert_never_backwards,
    assert_retry_after_waited,
    calls_in,
    emit_paced,
    env_account,
    squash,
    stream_concurrently,
    stream_reply,
    tokens,
)
from tests.platforms.matrix import MATRIX_TOKEN

pytestmark = pytest.mark.integration


def _originals(matrix, room: str) -> list[dict]:
    """The room's message events that are not edits."""
    return [e for e in matrix.events(room) if "m.relates_to" not in e["content"]]


@pytest.fixture
def account(matrix, monkeypatch):
    """A named Matrix account of this test only, with the given extra settings."""
    names = itertools.count()

    def make(token: str = MATRIX_TOKEN, **settings: str) -> str:
        values = {"homeserver": matrix.base_url, "access_token": token, **settings}
        return env_account(monkeypatch, "matrix", names, values)

    return make


@pytest.fixture
def restore(matrix):
    yield matrix
    matrix.configure(room_rate=50.0, room_burst=50, error_rate=0.0, drop_rate=0.0,
                     drop_after_rate=0.0, latency=0.0)


def test_reply_grows_by_edits_then_lands_whole(producer, matrix, room_id) -> None:
    result = stream_reply(producer, "matrix", room_id, per_second=150, timeout=20)

    assert result.all_sent, result
    [message] = matrix.messages(room_id)
    assert message.text == SAMPLE.strip()
    assert result.message_ids == [message.message_id]
    assert message.edits >= 2, "the reply grows by m.replace edits"
    assert_never_backwards(message, "the room never shows the reply going backwards")
    assert len(_originals(matrix, room_id)) == 1


def test_markdown_is_sent_as_html_with_a_plain_body(producer, matrix, room_id) -> None:
    stream = producer.start(channel="matrix", chat_id=room_id, format="markdown", interval=0.1)
    emit_paced(stream, "Here is **bold** and `code`.\n\n```py\nprint(1)\n```\nDone.", 80, 2)
    assert stream.stop(timeout=20).all_sent
    [message] = matrix.messages(room_id)
    assert message.text == "Here is bold and code.\n\nprint(1)\nDone."
    assert "<b>bold</b>" in message.extra["formatted_body"]
    assert '<pre><code class="language-py">print(1)</code></pre>' in message.extra["formatted_body"]
    assert message.extra["body"] == message.text


def test_a_long_reply_splits_at_boundaries(producer, matrix, room_id, account) -> None:
    small = account(max_chars="400")
    text = "\n\n".join(f"{i}. " + "words and more words " * 8 for i in range(9))  # ~1,500
    stream = producer.start(channel="matrix", chat_id=room_id, account=small, interval=0.1)
    for tok in tokens(text, 30):
        stream.emit(tok)
    result = stream.stop(timeout=30)

    assert result.all_sent, result
    shown = matrix.texts(room_id)
    assert len(shown) >= 4
    assert all(len(t) <= 400 for t in shown)
    assert squash("".join(shown)) == squash(text)
    assert [m.message_id for m in matrix.messages(room_id)] == result.message_ids
    assert len(_originals(matrix, room_id)) == len(shown), "no copies"


def test_rate_limit_answers_are_waited_out(producer, restore, room_id) -> None:
    matrix = restore
    matrix.configure(room_rate=1.0, room_burst=1)
    result = stream_reply(producer, "matrix", room_id, per_second=300, interval=0.05)

    assert result.all_sent, result
    assert matrix.texts(room_id) == [SAMPLE.strip()]
    calls = calls_in(matrix, room_id)
    limited = [c for c in calls if c.status == 429]
    assert limited and result.rate_limited >= 1
    assert_retry_after_waited(calls, "waited out retry_after_ms")


def test_a_redacted_reply_is_sent_anew(producer, matrix, room_id) -> None:
    stream = producer.start(channel="matrix", chat_id=room_id, interval=0.1)
    stream.emit("first part")
    assert matrix.wait_for(lambda hs: hs.texts(room_id) == ["first part"], timeout=5)
    [first] = matrix.messages(room_id)
    matrix.redact(room_id, first.message_id)
    stream.emit(", second part")
    result = stream.stop(timeout=20)

    assert result.all_sent, result
    assert matrix.texts(room_id) == ["first part, second part"]
    [second] = matrix.messages(room_id)
    assert second.message_id != first.message_id and result.message_ids == [second.message_id]
    assert [e["redacted"] for e in _originals(matrix, room_id)] == [True, False]


def test_a_bad_access_token_fails_clearly(producer, matrix, room_id, account) -> None:
    stranger = account(token="syt_not_a_real_token")
    stream = producer.start(channel="matrix", chat_id=room_id, account=stranger)
    stream.emit("hello?")
    result = stream.stop(timeout=20)

    assert not result.all_sent and result.how == "failed"
    assert "M_UNKNOWN_TOKEN" in (result.error or "")
    assert "syt_not_a_real_token" not in (result.error or "")
    assert matrix.texts(room_id) == []
    assert matrix.count(chat_id=room_id, status=401) == 1, "permanent: never retried"


def test_a_room_the_bot_left_fails_clearly(producer, matrix, room_id) -> None:
    matrix.forbid(room_id)
    stream = producer.start(channel="matrix", chat_id=room_id)
    stream.emit("hello?")
    result = stream.stop(timeout=20)
    assert not result.all_sent and "M_FORBIDDEN" in (result.error or "")


def test_faults_lose_nothing_and_create_no_duplicate_event(producer, restore) -> None:
    matrix = restore
    matrix.configure(error_rate=0.1, drop_rate=0.05, drop_after_rate=0.15, latency=0.01,
                     seed=5)
    rooms = [f"!faults{i}:sandbox.local" for i in range(6)]
    results = stream_concurrently(producer, "matrix", rooms)

    assert all(r.all_sent for r in results), [r for r in results if not r.all_sent]
    for room, result in zip(rooms, results, strict=True):
        assert matrix.texts(room) == [SAMPLE.strip()], room
        assert len(_originals(matrix, room)) == 1, "a lost answer never made a second event"
        assert result.message_ids == [matrix.messages(room)[0].message_id]
    assert matrix.count(status=0) > 0 and matrix.count(status=500) > 0, "faults were injected"
