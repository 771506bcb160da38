"""The Telegram client: error mapping (pure) and the retry policy over real HTTP to the sandbox."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_TOKEN
from tokenrelay.config import Settings
from tokenrelay.specs import UnknownChannel, get_spec
from workers.channels import base as errors
from workers.channels.http import Reply, RetryPolicy, Transport
from workers.channels.telegram import TelegramClient, read_error


def _err(code: int, desc: str, **extra) -> Reply:
    return Reply(code, {}, {"ok": False, "error_code": code, "description": desc, **extra})


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (_err(429, "Too Many Requests: retry after 7", parameters={"retry_after": 7}),
         errors.RateLimited),
        (_err(400, "Bad Request: message is not modified: specified new message content"),
         errors.NotModified),
        (_err(400, "Bad Request: message to edit not found"), errors.MessageGone),
        (_err(400, "Bad Request: can't parse entities: Unsupported start tag"), errors.ParseError),
        (_err(400, "Bad Request: message is too long"), errors.TooLong),
        (_err(400, "Bad Request: message text is empty"), errors.Rejected),
        (_err(400, "Bad Request: chat not found"), errors.PermanentFailure),
        (_err(401, "Unauthorized"), errors.PermanentFailure),
        (_err(403, "Forbidden: bot was blocked by the user"), errors.PermanentFailure),
    ],
)
def test_error_replies_map_to_core_error_types(reply: Reply, kind: type) -> None:
    assert isinstance(read_error("editMessageText", reply), kind)


def test_retry_after_is_read_from_parameters_then_header() -> None:
    err = read_error("sendMessage", _err(429, "Too Many Requests", parameters={"retry_after": 7}))
    assert isinstance(err, errors.RateLimited) and err.retry_after == 7
    header = Reply(429, {"Retry-After": "3"}, {"ok": False, "error_code": 429})
    assert read_error("sendMessage", header).retry_after == 3  # type: ignore[attr-defined]


def test_group_chats_default_to_a_slower_interval() -> None:
    spec = get_spec("telegram", Settings())
    assert spec.interval_for("-100123", 1.0) == 3.0
    assert spec.interval_for("42", 1.0) == 1.0
    assert spec.normalize_chat_id(42) == "42"
    with pytest.raises(UnknownChannel):
        get_spec("fax", Settings())


def test_a_malformed_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(errors.PermanentFailure) as info:
        TelegramClient("not a token", "default", Settings(), Transport(1.0))
    assert "not a token" not in str(info.value)


@pytest.fixture
def client(telegram):
    settings = Settings(telegram_api_base=telegram.base_url)
    transport = Transport(2.0, RetryPolicy(attempts=3, initial=0.01, max_wait=0.05))
    yield TelegramClient(TEST_TOKEN, "default", settings, transport)
    telegram.configure(error_rate=0.0, drop_rate=0.0)


def test_server_errors_are_retried_with_backoff_then_reported(client, telegram, chat_id) -> None:
    telegram.configure(error_rate=1.0)
    with pytest.raises(errors.TransientFailure) as info:
        client.send(chat_id, "hello", "text")
    assert telegram.count(chat_id=chat_id, status=500) == 3
    assert TEST_TOKEN not in str(info.value)
    assert telegram.texts(chat_id) == []


def test_dropped_connections_are_retried_and_never_leak_the_token(
    client, telegram, chat_id
) -> None:
    telegram.configure(drop_rate=1.0)
    with pytest.raises(errors.TransientFailure) as info:
        client.send(chat_id, "hello", "text")
    assert TEST_TOKEN not in str(info.value) and TEST_TOKEN.split(":")[1] not in repr(info.value)
    telegram.configure(drop_rate=0.0)
    assert client.send(chat_id, "hello", "text") == "1"


def test_send_edit_and_not_modified_over_http(client, telegram, chat_id) -> None:
    mid = client.send(chat_id, "one", "text")
    client.edit(chat_id, mid, "one two", "text")
    with pytest.raises(errors.NotModified):
        client.edit(chat_id, mid, "one two", "text")
    assert telegram.texts(chat_id) == ["one two"]
    assert TEST_TOKEN not in repr(client)


def test_markup_with_nothing_visible_yet_is_not_sent(client, telegram, chat_id) -> None:
    with pytest.raises(errors.Rejected):
        client.send(chat_id, "**", "markdown")
    assert telegram.count(chat_id=chat_id) == 0
    assert client.send(chat_id, "**bold", "markdown") == "1"
    assert telegram.messages(chat_id)[0].raw_text == "<b>bold</b>"


def test_a_malformed_api_url_fails_permanently_without_the_token() -> None:
    settings = Settings(telegram_api_base="http://[bad")
    client = TelegramClient(TEST_TOKEN, "default", settings, Transport(1.0))
    with pytest.raises(errors.PermanentFailure) as info:
        client.send("1", "hi", "text")
    assert TEST_TOKEN not in str(info.value) and TEST_TOKEN.split(":")[1] not in str(info.value)


def test_timeouts_retry_edits_but_never_resend_a_send(telegram, chat_id) -> None:
    settings = Settings(telegram_api_base=telegram.base_url)
    transport = Transport(0.2, RetryPolicy(attempts=2, initial=0.01, max_wait=0.02))
    slow = TelegramClient(TEST_TOKEN, "default", settings, transport)
    mid = slow.send(chat_id, "early", "text")
    telegram.configure(latency=0.5)
    try:
        # the platform acts on a request whose answer never came back: one request, no copy
        with pytest.raises(errors.Ambiguous, match="answer lost"):
            slow.send(chat_id, "late", "text")
        assert telegram.wait_for(lambda e: e.texts(chat_id) == ["early", "late"], timeout=5)
        # an edit is idempotent: retried, then reported
        with pytest.raises(errors.TransientFailure, match="failed 2 times"):
            slow.edit(chat_id, mid, "early, edited", "text")
        assert telegram.wait_for(lambda e: e.count(chat_id=chat_id) == 4, timeout=5)
    finally:
        telegram.configure(latency=0.0)
    assert telegram.texts(chat_id) == ["early, edited", "late"], "no duplicate text"
