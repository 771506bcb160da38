"""End to end: producer -> Redis -> Celery worker -> Discord sandbox, judged by its ledger."""

from __future__ import annotations

import itertools

import pytest

from sandbox.discord import ID_BASE
from tests.helpers import (
    SAMPLE,
    assert_never_backwards,
    configured,
    emit_paced,
    first_429_and_later_successes,
    squash,
    stream_around_deletion,
    stream_reply,
    tokens,
)

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


def _chat() -> str:
    return str(900_000_000_000_000_000 + next(_ids))


def test_reply_grows_by_edits_then_lands_whole(producer, discord) -> None:
    chat = _chat()
    result = stream_reply(producer, "discord", chat, per_second=150, timeout=30)
    assert result.all_sent, result
    [message] = discord.messages(chat)
    assert message.text == SAMPLE.strip()
    assert result.message_ids == [str(ID_BASE + message.message_id)]
    assert message.edits >= 2
    assert_never_backwards(message, "the chat never moves backwards", loose=True)


def test_long_reply_splits_at_2000_characters(producer, discord) -> None:
    chat = _chat()
    text = "\n\n".join(f"Part {i}: " + "streamed text (really) " * 12 for i in range(18))
    stream = producer.start(channel="discord", chat_id=chat, interval=0.2)
    for tok in tokens(text, 50):
        stream.emit(tok)
    result = stream.stop(timeout=60)
    assert result.all_sent, result
    messages = discord.messages(chat)
    assert len(messages) >= 3 and all(len(m.raw_text) <= 2000 for m in messages)
    assert squash("".join(m.text for m in messages)) == squash(text)
    assert discord.count(chat_id=chat, status=400) == 0


def test_a_429_is_waited_out(producer, discord) -> None:
    chat = _chat()
    # the route buckets' headers keep the core in line; the global limit is not announced
    with configured(discord, {"global_rate": 1.0}, {"global_rate": 50.0}):
        result = stream_reply(producer, "discord", chat, per_second=30, interval=0.1)
    assert result.all_sent, result
    assert discord.texts(chat) == [SAMPLE.strip()]
    limited, after = first_429_and_later_successes(discord, chat)
    assert limited and result.rate_limited >= 1
    assert after[0].t - limited[0].t >= 0.5, "retry_after was waited out"


def test_deleted_message_is_sent_anew(producer, discord) -> None:
    chat = _chat()
    result = stream_around_deletion(
        producer, discord, "discord", chat, lambda: discord.delete(chat, 1)
    )
    assert result.all_sent and result.resent >= 1, result
    assert discord.texts(chat) == ["first part, second part"]


def test_lost_access_is_a_clear_permanent_failure(producer, discord) -> None:
    chat = _chat()
    discord.forbid(chat)
    stream = producer.start(channel="discord", chat_id=chat)
    stream.emit("hello?")
    result = stream.stop(timeout=30)
    assert not result.all_sent and result.how == "failed"
    assert "Missing Access" in (result.error or "")
    assert discord.count(chat_id=chat, status=403) == 1, "a 4xx is never retried blindly"


def test_lost_answers_never_leave_a_duplicate_thanks_to_the_nonce(producer, discord) -> None:
    chat = _chat()
    faults = {"error_rate": 0.2, "drop_rate": 0.1, "drop_after_rate": 0.3, "seed": 3}
    calm = {"error_rate": 0.0, "drop_rate": 0.0, "drop_after_rate": 0.0}
    with configured(discord, faults, calm):
        streams = []
        for i in range(4):
            stream = producer.start(channel="discord", chat_id=chat, interval=0.1)
            emit_paced(stream, f"Reply {i}: {SAMPLE}", per_second=300)
            streams.append(stream)
        results = [s.stop(timeout=60) for s in streams]
    assert all(r.all_sent for r in results), results
    assert sorted(discord.texts(chat)) == sorted(f"Reply {i}: {SAMPLE.strip()}" for i in range(4))
    assert discord.count(chat_id=chat, fault="drop_after") >= 1, "answers were lost"
