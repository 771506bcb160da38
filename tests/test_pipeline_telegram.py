"""End to end: producer -> Redis -> Celery worker -> Telegram sandbox, judged by its ledger."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from tests.helpers import SAMPLE, emit_paced, squash, tokens
from workers.planner.split import utf16_units

pytestmark = pytest.mark.integration


def test_reply_grows_live_then_lands_whole(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    emit_paced(stream, SAMPLE, per_second=150)
    result = stream.stop(timeout=20)

    assert result.all_sent, result
    assert telegram.texts(chat_id) == [SAMPLE.strip()]
    [msg] = telegram.messages(chat_id)
    assert result.message_ids == [str(msg.message_id)]
    assert msg.edits >= 2, "the reply must grow by edits while it is written"
    for before, after in zip(msg.history, msg.history[1:], strict=False):
        assert after[1].startswith(before[1].rstrip()[:-1]), "the chat never moves backwards"


def test_first_text_is_sent_at_once_not_after_an_interval(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=5.0)
    t0 = time.monotonic()
    stream.emit("Hello")
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["Hello"], timeout=2.5)
    assert time.monotonic() - t0 < 2.5
    stream.emit(" world")
    assert stream.stop(timeout=20).all_sent
    assert telegram.texts(chat_id) == ["Hello world"]


def test_no_lost_tail_without_stop_under_bursty_emits(producer, telegram) -> None:
    """Many streams emit in bursts around flush boundaries; the flushes alone deliver it all."""
    streams = []
    texts = {}
    for i in range(8):
        chat = str(50_000 + i)
        streams.append((chat, producer.start(channel="telegram", chat_id=chat, interval=0.1)))
        texts[chat] = f"stream {i}: " + " ".join(f"w{j}" for j in range(150))

    def run(chat, stream):
        for k, tok in enumerate(tokens(texts[chat], 3)):
            stream.emit(tok)
            if k % 17 == 0:
                time.sleep(0.1)  # a pause right around the flush interval

    threads = [threading.Thread(target=run, args=s) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for chat, _ in streams:
        assert telegram.wait_for(lambda e, c=chat: e.texts(c) == [texts[c]], timeout=15), (
            chat, telegram.texts(chat)
        )
    for _, stream in streams:
        assert stream.stop(timeout=20).all_sent


def test_long_reply_splits_at_boundaries_and_only_the_last_message_grows(
    producer, telegram, chat_id
) -> None:
    para = "Paragraph with emoji 😀 and words " * 12
    text = "\n\n".join(f"{i}. {para}" for i in range(22))  # ~9,000 characters
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=0.2)
    for tok in tokens(text, 40):
        stream.emit(tok)
    result = stream.stop(timeout=30)

    assert result.all_sent, result
    messages = telegram.messages(chat_id)
    assert len(messages) == 3
    assert [str(m.message_id) for m in messages] == result.message_ids
    assert squash("".join(m.text for m in messages)) == squash(text)
    for m in messages:
        assert utf16_units(m.text) <= 4096
        assert m.text.endswith(("words", "words ".strip())), "split at a boundary, not mid-word"
    for older, newer in itertools.pairwise(messages):
        late_edits = [t for t, _ in older.history if t > newer.created_at]
        assert late_edits == [], "after a split, edits touch only the last message"
    assert telegram.count(chat_id=chat_id, status=400) == 0


def test_tool_boundary_notice_joins_the_streamed_message(producer, telegram, chat_id) -> None:
    with producer.stream(channel="telegram", chat_id=chat_id) as s:
        s.emit("Let me look that up.")
        s.tool_message("🔍 searching the web…")
        s.emit("Found it: 42.")
    assert telegram.texts(chat_id) == [
        "Let me look that up.\n\n🔍 searching the web…\n\nFound it: 42."
    ]


def test_deleted_message_is_sent_anew(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=0.1)
    stream.emit("first part")
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["first part"], timeout=5)
    telegram.delete(chat_id, 1)
    stream.emit(", second part")
    result = stream.stop(timeout=20)
    assert result.all_sent
    assert telegram.texts(chat_id) == ["first part, second part"]
    assert result.message_ids == ["2"]
    assert result.resent >= 1


def test_unparseable_markup_is_resent_as_plain_text(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, format="html")
    stream.emit("<b>bold</b> then <blink>nope</blink>")
    result = stream.stop(timeout=20)
    assert result.all_sent and result.plain_fallbacks >= 1
    [msg] = telegram.messages(chat_id)
    assert msg.parse_mode is None
    assert msg.text == "<b>bold</b> then <blink>nope</blink>"


def test_markdown_is_rendered_and_half_written_markup_never_rejected(
    producer, telegram, chat_id
) -> None:
    text = "Here is **bold** text, `code` and\n\n```python\nprint('hi')\n```\nDone."
    stream = producer.start(channel="telegram", chat_id=chat_id, format="markdown", interval=0.1)
    emit_paced(stream, text, per_second=60, size=2)
    result = stream.stop(timeout=20)
    assert result.all_sent
    [msg] = telegram.messages(chat_id)
    assert msg.parse_mode == "HTML"
    assert "<b>bold</b>" in msg.raw_text and "**" not in msg.text
    assert telegram.count(chat_id=chat_id, status=400) == 0, "every healed edit parsed"


def test_blocked_bot_is_a_clear_permanent_failure(producer, telegram, chat_id) -> None:
    telegram.block(chat_id)
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("hello?")
    result = stream.stop(timeout=20)
    assert not result.all_sent
    assert result.how == "failed"
    assert "blocked" in (result.error or "")
    assert telegram.count(chat_id=chat_id, status=403) == 1, "permanent: never retried"


def test_empty_stream_sends_nothing(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("   \n ")
    result = stream.stop(timeout=20)
    assert result.all_sent and result.how == "empty" and result.message_ids == []
    assert telegram.count(chat_id=chat_id) == 0


def test_take_removes_the_undelivered_tail(producer, telegram, chat_id) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=30)
    stream.emit("shown")
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["shown"], timeout=5)
    stream.emit(" and the rest")
    assert stream.take() == " and the rest"
    result = stream.stop(timeout=20)
    assert result.all_sent
    assert telegram.texts(chat_id) == ["shown"]


async def _astream(producer, chat_id):
    async with producer.astream(channel="telegram", chat_id=chat_id) as s:
        for tok in tokens("async agents stream too", 5):
            s.emit(tok)
        await s.tool_message("⚙️ tool")
    return s


def test_async_stream(producer, telegram, chat_id) -> None:
    import asyncio

    asyncio.run(_astream(producer, chat_id))
    assert telegram.texts(chat_id) == ["async agents stream too\n\n⚙️ tool"]


def test_watchdog_finalizes_a_stream_whose_agent_went_silent(settings, worker, telegram) -> None:
    from dataclasses import replace

    from producers import StreamProducer

    quiet = StreamProducer(replace(settings, idle_timeout=1.0))
    try:
        chat = "77001"
        stream = quiet.start(channel="telegram", chat_id=chat)
        stream.emit("the agent crashed after this")
        stream.flush()
        quiet._pusher.discard(stream.id)  # the agent is gone: no heartbeat any more
        result = quiet.handle(stream.id).result(timeout=10)
        assert result.all_sent and result.how == "streamed"
        assert quiet.store.meta(stream.id)["close_reason"] == "abandoned"
        assert telegram.texts(chat) == ["the agent crashed after this"]
    finally:
        quiet.close()


def test_a_live_agent_in_a_long_tool_call_is_not_finalized(settings, worker, telegram) -> None:
    from dataclasses import replace

    from producers import StreamProducer

    patient = StreamProducer(replace(settings, idle_timeout=1.0))
    try:
        chat = "77002"
        stream = patient.start(channel="telegram", chat_id=chat)
        stream.emit("calling a slow tool")
        stream.tool_message("⏳ this takes a while")
        # three idle timeouts without a token: the heartbeat keeps the stream alive
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            assert patient.store.meta(stream.id)["status"] == "open", "finalized while alive"
            time.sleep(0.25)
        stream.emit("done.")
        result = stream.stop(timeout=20)
        assert result.all_sent
        assert telegram.texts(chat) == ["calling a slow tool\n\n⏳ this takes a while\n\ndone."]
    finally:
        patient.close()


def test_emit_after_the_watchdog_finalized_says_so(settings, worker, telegram) -> None:
    from dataclasses import replace

    from producers import StreamClosed, StreamProducer

    quiet = StreamProducer(replace(settings, idle_timeout=1.0))
    try:
        stream = quiet.start(channel="telegram", chat_id="77003")
        stream.emit("first words")
        stream.flush()
        quiet._pusher.discard(stream.id)  # silent (a hung agent)
        quiet.handle(stream.id).result(timeout=10)
        with pytest.raises(StreamClosed, match="finalized by the workers"):
            stream.emit("too late")
            stream.flush()
    finally:
        quiet.close()


def test_edits_keep_the_interval_even_with_duplicate_schedule_entries(
    producer, telegram, chat_id
) -> None:
    interval = 0.4
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=interval)
    words = [f"w{i} " for i in range(300)]
    for i, word in enumerate(words):
        stream.emit(word)
        if i % 60 == 30:  # stray "due now" entries, as a re-arm or a replayed claim would be
            for _ in range(3):
                producer.store.schedule([(stream.id, 0)])
        time.sleep(0.01)
    assert stream.stop(timeout=20).all_sent
    assert telegram.texts(chat_id) == ["".join(words).strip()]
    stop_sent = telegram.messages(chat_id)[0].history[-1][0]
    times = [
        c.t for c in telegram.calls
        if c.chat_id == chat_id and c.status == 200 and c.t < stop_sent - 0.01
    ]
    assert len(times) >= 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= interval - 0.02, gaps


def test_rerunning_any_step_changes_nothing_visible(producer, telegram, chat_id) -> None:
    from tokenrelay.names import STOP
    from workers import runtime
    from workers.engine import watch

    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("exactly once")
    first = stream.stop(timeout=20)
    calls = telegram.count(chat_id=chat_id)
    flusher = runtime.flusher()
    assert flusher.run(stream.id).status == "closed"
    assert watch(flusher.store, flusher.settings, stream.id) == -1
    # a redelivered stop task: the same task id, as the broker would redeliver it
    task_id = "redelivered-stop-" + stream.id
    for _ in range(2):
        producer.app.send_task(STOP, args=[stream.id], queue=producer.settings.queue,
                               task_id=task_id)
    producer.store.schedule([(stream.id, 0)])
    assert not telegram.wait_for(lambda e: e.count(chat_id=chat_id) > calls, timeout=1.5)
    assert telegram.texts(chat_id) == ["exactly once"]
    assert stop_result_of(producer, stream.id) == first


def stop_result_of(producer, stream_id):

    return producer.handle(stream_id).result(timeout=5)


def test_a_code_block_split_across_messages_stays_code(producer, telegram, chat_id) -> None:
    code = "\n".join(f"value_{i} = compute(__input__, {i})  # step {i}" for i in range(160))
    text = f"Here is the script:\n\n```python\n{code}\n```\n\nThat is all."
    stream = producer.start(channel="telegram", chat_id=chat_id, format="markdown", interval=0.2)
    for tok in tokens(text, 50):
        stream.emit(tok)
    result = stream.stop(timeout=30)
    assert result.all_sent
    messages = telegram.messages(chat_id)
    assert len(messages) == 2
    first, second = messages
    assert '<pre><code class="language-python">' in first.raw_text
    assert second.raw_text.startswith('<pre><code class="language-python">value_'), (
        "the second message reopens the code block"
    )
    assert "__input__" in second.text, "code is not read as Markdown emphasis"
    assert telegram.count(chat_id=chat_id, status=400) == 0


def test_the_final_markdown_shows_a_trailing_marker_as_written(
    producer, telegram, chat_id
) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, format="markdown")
    stream.emit("Rated **5** of 5 *")
    # streaming holds the trailing "*" back: it might still open an emphasis
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["Rated 5 of 5"], timeout=5)
    assert stream.stop(timeout=20).all_sent
    assert telegram.texts(chat_id) == ["Rated 5 of 5 *"]


def test_closing_the_producer_pushes_what_streams_still_buffer(
    settings, worker, telegram, chat_id
) -> None:
    from producers import StreamProducer

    own = StreamProducer(settings)
    stream = own.start(channel="telegram", chat_id=chat_id, interval=0.1)
    # park the background thread first, so only close() itself can push these tokens
    own._pusher._stopping = True
    own._pusher._wake.set()
    own._pusher._thread.join(5)
    stream.emit("pushed by close()")
    own.close()  # no stop(): the flush chain still delivers what close() pushed
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["pushed by close()"], timeout=10)


def test_stop_without_waiting_returns_a_handle(producer, telegram, chat_id) -> None:
    from producers import StopHandle

    stream = producer.start(channel="telegram", chat_id=chat_id)
    stream.emit("later")
    handle = stream.stop(wait=False)
    assert isinstance(handle, StopHandle)
    result = handle.result(timeout=20)
    assert handle.done() and result.all_sent
    assert stream.stop() == result
    assert telegram.texts(chat_id) == ["later"]


def test_a_stop_whose_schedule_entry_was_lost_still_delivers(producer, telegram, chat_id) -> None:

    stream = producer.start(channel="telegram", chat_id=chat_id, interval=30)
    stream.emit("the stop task and schedule entry for this stream were lost")
    stream.flush()
    producer.store.close(stream.id)  # closed, but nothing scheduled its final pass
    result = producer.handle(stream.id).result(timeout=20)
    assert result.all_sent
    assert telegram.texts(chat_id) == ["the stop task and schedule entry for this stream were lost"]
