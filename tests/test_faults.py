"""Server errors, dropped connections, latency and 429s: every reply still lands, once."""

from __future__ import annotations

import pytest

from tests.helpers import (
    SAMPLE,
    assert_retry_after_waited,
    calls_in,
    emit_paced,
    stream_concurrently,
    stream_reply,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def faulty(telegram):
    """The shared sandbox, with every knob a test changes put back as it was."""
    before = telegram.knobs
    yield telegram
    telegram.configure(
        error_rate=before.error_rate, drop_rate=before.drop_rate, latency=before.latency,
        private_rate=before.private_rate, private_burst=before.private_burst,
    )


def test_5xx_drops_and_latency_lose_nothing_and_duplicate_nothing(producer, faulty) -> None:
    faulty.configure(error_rate=0.15, drop_rate=0.05, latency=0.02)
    chats = [str(60_000 + i) for i in range(10)]
    results = stream_concurrently(producer, "telegram", chats)
    assert all(r.all_sent for r in results), [r for r in results if not r.all_sent]
    for chat in chats:
        assert faulty.texts(chat) == [SAMPLE.strip()], chat
    assert faulty.count(status=500) + faulty.count(status=0) > 0, "faults were injected"


def test_429_retry_after_is_honoured_and_the_final_is_never_dropped(
    producer, faulty, chat_id
) -> None:
    faulty.configure(private_rate=0.5, private_burst=1)
    result = stream_reply(producer, "telegram", chat_id, interval=0.05)
    assert result.all_sent
    assert result.rate_limited >= 1
    assert faulty.texts(chat_id) == [SAMPLE.strip()]
    assert_retry_after_waited(calls_in(faulty, chat_id), "waited out retry_after")


def test_a_platform_that_counts_longer_gets_smaller_messages_not_lost_text(
    producer, telegram, chat_id
) -> None:
    telegram.configure(max_units=1000)
    try:
        text = " ".join(f"word{i}" for i in range(450))  # about 3,100 characters
        stream = producer.start(channel="telegram", chat_id=chat_id, interval=0.1)
        emit_paced(stream, text, per_second=2000, size=20)
        result = stream.stop(timeout=60)
    finally:
        telegram.configure(max_units=4096)
    assert result.all_sent, result
    messages = telegram.texts(chat_id)
    assert len(messages) >= 4
    assert all(len(m) <= 1000 for m in messages)
    assert " ".join(messages) == text
