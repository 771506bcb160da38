"""Nothing secret travels in tasks; JSON only; the bot token never shows in logs or errors."""

from __future__ import annotations

import logging

import pytest
from celery.signals import before_task_publish

from tests.conftest import TEST_TOKEN
from workers.app import app

pytestmark = pytest.mark.integration


def test_json_only() -> None:
    assert app.conf.task_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_task_arguments_are_stream_ids_only(producer, telegram, chat_id) -> None:
    published = []

    def record(body=None, headers=None, **_):
        published.append((headers or {}).get("argsrepr") or str(body))

    before_task_publish.connect(record, weak=False)
    try:
        with producer.stream(channel="telegram", chat_id=chat_id) as s:
            s.emit("a very secret reply text")
    finally:
        before_task_publish.disconnect(record)
    assert published
    for args in published:
        assert "secret reply" not in args and TEST_TOKEN not in args
        assert s.id in args


def test_token_never_in_logs_or_errors(producer, telegram, chat_id, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    telegram.configure(error_rate=1.0)
    try:
        stream = producer.start(channel="telegram", chat_id=chat_id)
        stream.emit("hello")
        assert telegram.wait_for(lambda e: e.count(chat_id=chat_id, status=500) >= 4, timeout=10)
    finally:
        telegram.configure(error_rate=0.0)
    result = stream.stop(timeout=30)
    assert result.all_sent
    assert caplog.records
    assert TEST_TOKEN not in caplog.text
    assert TEST_TOKEN.split(":")[1] not in caplog.text


def test_bad_token_fails_clearly_without_echoing_it(
    producer, telegram, chat_id, monkeypatch
) -> None:
    wrong = "999:WRONG-token-value"
    monkeypatch.setenv("TOKENRELAY_TELEGRAM_OTHER_BOT_TOKEN", wrong)
    stream = producer.start(channel="telegram", chat_id=chat_id, account="other")
    stream.emit("hi")
    result = stream.stop(timeout=20)
    assert not result.all_sent and result.how == "failed"
    assert "Unauthorized" in result.error
    assert "WRONG" not in result.error


def test_missing_credential_is_a_clear_failure(producer, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, account="nobody")
    stream.emit("hi")
    result = stream.stop(timeout=20)
    assert result.how == "failed"
    assert "TOKENRELAY_TELEGRAM_NOBODY_BOT_TOKEN" in result.error
