"""End to end: producer -> Redis -> Celery worker -> Feishu sandbox, judged by its ledger."""

from __future__ import annotations

import itertools

import pytest

from sandbox.feishu import APP_ID, APP_SECRET
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
from workers.channels.feishu_markdown import card_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
def account(feishu, monkeypatch):
    """A named account of this test only (``platform`` feishu or lark), with extra settings."""
    names = itertools.count()

    def make(platform: str = "feishu", **settings: str) -> str:
        values = {"api_base": f"{feishu.base_url}/open-apis", "app_id": APP_ID,
                  "app_secret": APP_SECRET, **settings}
        return env_account(monkeypatch, platform, names, values)

    return make


@pytest.fixture
def restore(feishu):
    yield feishu
    feishu.configure(card_rate=10.0, card_burst=10, token_ttl=7200.0, error_rate=0.0,
                     drop_rate=0.0, drop_after_rate=0.0, latency=0.0)


def test_a_card_grows_then_stops_streaming(producer, feishu, feishu_chat) -> None:
    result = stream_reply(producer, "feishu", feishu_chat, per_second=150, timeout=20)

    assert result.all_sent, result
    [message] = feishu.messages(feishu_chat)
    assert message.text == SAMPLE.strip()
    assert message.extra["streaming"] is False, "streaming mode ends with the reply"
    assert result.message_ids == [
        f"{message.message_id}:{message.extra['card_id']}:reply:"
        + result.message_ids[0].rsplit(":", 1)[1]
    ]
    assert message.edits >= 2
    assert_never_backwards(message, "the card never shows the reply going backwards")
    assert feishu.count(chat_id=feishu_chat, status=400) == 0, "every sequence increased"


def test_lark_is_the_same_client_on_another_base(producer, feishu, feishu_chat, account):
    lark = account("lark")
    stream = producer.start(channel="lark", chat_id=feishu_chat, account=lark)
    stream.emit("Hello from Lark")
    assert stream.stop(timeout=20).all_sent
    assert feishu.texts(feishu_chat) == ["Hello from Lark"]


def test_a_long_reply_splits_into_cards_within_the_size(
    producer, feishu, feishu_chat, account
) -> None:
    small = account(max_bytes="600")
    text = "\n\n".join(f"{i}. " + "words and more words " * 8 for i in range(9))
    stream = producer.start(channel="feishu", chat_id=feishu_chat, account=small, interval=0.1)
    for tok in tokens(text, 30):
        stream.emit(tok)
    result = stream.stop(timeout=30)

    assert result.all_sent, result
    messages = feishu.messages(feishu_chat)
    assert len(messages) >= 3 and len(messages) == len(result.message_ids)
    assert all(card_bytes(m.text) <= 600 for m in messages)
    assert all(m.extra["streaming"] is False for m in messages)
    assert squash("".join(m.text for m in messages)) == squash(text)


def test_card_rate_limits_are_waited_out(producer, restore, feishu_chat) -> None:
    feishu = restore
    feishu.configure(card_rate=1.0, card_burst=1)
    result = stream_reply(producer, "feishu", feishu_chat, per_second=300, interval=0.05)

    assert result.all_sent, result
    assert feishu.texts(feishu_chat) == [SAMPLE.strip()]
    calls = calls_in(feishu, feishu_chat)
    assert any(c.status == 429 for c in calls) and result.rate_limited >= 1
    assert_retry_after_waited(calls, "waited out the reset")


def test_a_recalled_card_is_sent_anew(producer, feishu, feishu_chat) -> None:
    stream = producer.start(channel="feishu", chat_id=feishu_chat, interval=0.1)
    stream.emit("first part")
    assert feishu.wait_for(lambda fe: fe.texts(feishu_chat) == ["first part"], timeout=5)
    [first] = feishu.messages(feishu_chat)
    feishu.recall(feishu_chat, first.message_id)
    stream.emit(", second part")
    result = stream.stop(timeout=20)

    assert result.all_sent, result
    assert feishu.texts(feishu_chat) == ["first part, second part"]
    assert result.resent >= 1


def test_tokens_expire_and_are_refreshed_mid_stream(producer, restore, feishu_chat) -> None:
    feishu = restore
    feishu.configure(token_ttl=0.8, card_rate=100.0, card_burst=100)
    feishu.revoke_tokens()
    issued = feishu.tokens_issued()
    stream = producer.start(channel="feishu", chat_id=feishu_chat, interval=0.1)
    emit_paced(stream, SAMPLE * 3, per_second=400)  # about 2 s: several token lifetimes
    result = stream.stop(timeout=30)

    assert result.all_sent, result
    assert feishu.texts(feishu_chat) == [(SAMPLE * 3).strip()]
    assert feishu.tokens_issued() - issued >= 2


def test_a_wrong_app_secret_fails_clearly(producer, feishu, feishu_chat, account) -> None:
    wrong = account(app_secret="not-the-secret")
    stream = producer.start(channel="feishu", chat_id=feishu_chat, account=wrong)
    stream.emit("hello?")
    result = stream.stop(timeout=20)

    assert not result.all_sent and result.how == "failed"
    assert "code 10014" in (result.error or "")
    assert "not-the-secret" not in (result.error or "")
    assert feishu.texts(feishu_chat) == []


def test_faults_lose_nothing(producer, restore) -> None:
    feishu = restore
    feishu.configure(error_rate=0.1, drop_rate=0.05, drop_after_rate=0.1, latency=0.01, seed=7,
                     card_rate=100.0, card_burst=100)
    chats = [f"oc_faults{i}" for i in range(6)]
    results = stream_concurrently(producer, "feishu", chats)

    assert all(r.all_sent for r in results), [r for r in results if not r.all_sent]
    for chat in chats:
        assert feishu.texts(chat) == [SAMPLE.strip()], chat
    assert feishu.count(status=0) > 0 and feishu.count(status=500) > 0, "faults were injected"
