"""Telegram drafts (``native=True``): sendMessageDraft while streaming, the real message at
stop, and send+edit when the server refuses drafts. Judged by the sandbox's ledger.

The sandbox's draft switches live on its ``BotApi`` (``drafts_enabled``, ``draft_ttl``): the
emulator's ``configure`` knobs are defined in sandbox/telegram/knobs.py, outside these tests.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from sandbox.telegram import TelegramEmulator
from tests.helpers import SAMPLE, emit_paced
from tokenrelay.config import Settings
from workers.channels.base import Call
from workers.channels.http import Transport
from workers.channels.telegram import DRAFT, TelegramClient, draft_id_of

TOKEN = "123456:drafts-unit-token"
_chats = itertools.count(88_000)


def live_draft(emulator: TelegramEmulator, chat_id: str):
    """The draft the chat shows now (None when expired or replaced by a message)."""
    api = emulator._api
    return emulator._ledger.live_draft(chat_id, time.monotonic(), api.draft_ttl)


@pytest.fixture
def drafts_off(telegram) -> Iterator[TelegramEmulator]:
    telegram._api.drafts_enabled = False
    yield telegram
    telegram._api.drafts_enabled = True


@pytest.fixture
def short_drafts(telegram) -> Iterator[TelegramEmulator]:
    telegram._api.draft_ttl = 0.3
    yield telegram
    telegram._api.draft_ttl = 30.0


@pytest.fixture
def chat() -> str:
    return str(next(_chats))


# --- the client alone ---------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[TelegramEmulator]:
    with TelegramEmulator(token=TOKEN, private_rate=1000.0, private_burst=1000) as emu:
        yield emu


@pytest.fixture
def client(sandbox: TelegramEmulator) -> TelegramClient:
    settings = Settings(telegram_api_base=sandbox.base_url)
    return TelegramClient(TOKEN, "default", settings, Transport(2.0))


NATIVE = Call(key="0123456789abcdef012345678", native=True)


def test_draft_ids_are_stable_and_never_zero() -> None:
    assert draft_id_of(NATIVE.key) == draft_id_of(NATIVE.key) > 0
    assert draft_id_of("a" * 25) != draft_id_of("b" * 25)
    assert draft_id_of("") > 0


def test_a_native_stream_drafts_then_sends_the_real_message(sandbox, client) -> None:
    draft = client.send("42", "Hel", "text", call=NATIVE)
    assert draft == f"{DRAFT}{draft_id_of(NATIVE.key)}"
    assert client.edit("42", draft, "Hello", "text", call=NATIVE) is None
    assert sandbox.texts("42") == [] and [d.text for d in sandbox.drafts("42")] == ["Hel", "Hello"]
    real = client.edit("42", draft, "Hello world", "text", final=True, call=NATIVE)
    assert real == "1" and sandbox.texts("42") == ["Hello world"]
    assert live_draft(sandbox, "42") is None, "the message replaced the draft"


def test_groups_and_non_native_streams_never_draft(sandbox, client) -> None:
    assert client.send("-100", "group", "text", call=NATIVE) == "1"
    assert client.send("43", "plain", "text", call=Call(key=NATIVE.key)) == "1"
    assert sandbox.count("sendMessageDraft") == 0


def test_refused_drafts_fall_back_to_send_and_edit(sandbox, client) -> None:
    sandbox._api.drafts_enabled = False
    message_id = client.send("44", "Hel", "text", call=NATIVE)
    assert message_id == "1" and sandbox.texts("44") == ["Hel"]
    client.edit("44", message_id, "Hello", "text", call=NATIVE)
    assert sandbox.texts("44") == ["Hello"]
    assert sandbox.count("sendMessageDraft") == 1, "refused once, then never asked again"


def test_drafts_refused_mid_stream_keep_the_text(sandbox, client) -> None:
    draft = client.send("45", "Hel", "text", call=NATIVE)
    sandbox._api.drafts_enabled = False
    real = client.edit("45", draft, "Hello", "text", call=NATIVE)
    assert real == "1" and sandbox.texts("45") == ["Hello"]


# --- end to end ---------------------------------------------------------------------------

integration = pytest.mark.integration


@integration
def test_a_reply_streams_as_drafts_and_lands_as_one_message(producer, telegram, chat) -> None:
    stream = producer.start(channel="telegram", chat_id=chat, native=True, interval=0.1)
    emit_paced(stream, SAMPLE, per_second=150)
    assert telegram.wait_for(lambda e: len(e.drafts(chat)) >= 2, timeout=10)
    stream.emit(" Done.")
    result = stream.stop(timeout=20)

    assert result.all_sent, result
    drafts = [d.text for d in telegram.drafts(chat)]
    for before, after in itertools.pairwise(drafts):
        assert after.startswith(before), "the draft grows, never backwards"
    assert telegram.texts(chat) == [SAMPLE.strip() + " Done."]
    [message] = telegram.messages(chat)
    assert result.message_ids == [str(message.message_id)]
    assert message.created_at > telegram.drafts(chat)[-1].t - 0.001
    assert telegram.count("editMessageText", chat_id=chat) == 0, "drafts, not edits"


@integration
def test_a_reply_fully_drafted_before_stop_still_lands(producer, telegram, chat) -> None:
    stream = producer.start(channel="telegram", chat_id=chat, native=True, interval=0.1)
    stream.emit("All of it")
    assert telegram.wait_for(
        lambda e: [d.text for d in e.drafts(chat)][-1:] == ["All of it"], timeout=10
    )
    result = stream.stop(timeout=20)
    assert result.all_sent, result
    assert telegram.texts(chat) == ["All of it"]


@integration
def test_an_idle_draft_that_expired_still_ends_as_the_real_message(
    producer, short_drafts, chat
) -> None:
    telegram = short_drafts
    stream = producer.start(channel="telegram", chat_id=chat, native=True, interval=0.1)
    stream.emit("Thinking")
    assert telegram.wait_for(lambda e: live_draft(e, chat) is not None, timeout=10)
    time.sleep(0.5)  # a long tool call: the scenario, not a synchronisation
    assert live_draft(telegram, chat) is None, "the draft expired"
    stream.emit(" and the answer.")
    result = stream.stop(timeout=20)

    assert result.all_sent, result
    assert telegram.texts(chat) == ["Thinking and the answer."]


@integration
def test_refused_drafts_fall_back_without_losing_text(producer, drafts_off, chat) -> None:
    telegram = drafts_off
    stream = producer.start(channel="telegram", chat_id=chat, native=True, interval=0.1)
    emit_paced(stream, SAMPLE, per_second=150)
    result = stream.stop(timeout=20)

    assert result.all_sent, result
    assert telegram.texts(chat) == [SAMPLE.strip()]
    assert telegram.count("sendMessageDraft", status=404, chat_id=chat) >= 1
    assert telegram.count("editMessageText", status=200, chat_id=chat) >= 1, "send + edit"


@integration
def test_a_split_turns_the_closed_draft_into_a_real_message(producer, telegram, chat) -> None:
    para = "Paragraph of words " * 30
    text = "\n\n".join(f"{i}. {para}" for i in range(9))  # about 5,200 characters
    stream = producer.start(channel="telegram", chat_id=chat, native=True, interval=0.1)
    emit_paced(stream, text, per_second=3000, size=20)
    result = stream.stop(timeout=30)

    assert result.all_sent, result
    messages = telegram.messages(chat)
    assert len(messages) == 2 == len(result.message_ids)
    assert "".join(m.text for m in messages).replace("\n", "").replace(" ", "") == (
        text.replace("\n", "").replace(" ", "")
    )
