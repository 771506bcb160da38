"""``tokenrelay demo``: stream a sample reply end to end and show the chat as it grows.

With no TOKENRELAY_* URLs set it runs everything embedded: a private redis-server, the Telegram
sandbox and a Celery worker in this process. With TOKENRELAY_BROKER_URL set it only produces:
your workers deliver to the real chat named by ``--chat-id``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TextIO

#: the built-in reply: long enough to need two Telegram messages, with a tool call inside
SAMPLE_REPLY = (
    "Great question! Let me explain how **tokenrelay** streams this very reply.\n\n"
    + "\n\n".join(
        f"{i}. The agent emits a token; the producer appends it to an in-process buffer and "
        "returns at once. A background pusher moves batches to Redis with one pipeline, arms "
        "the stream's tick atomically and enqueues a debounced flush task. A Celery worker takes "
        "the stream's lease, plans the sends and edits within Telegram's limits (4096 UTF-16 "
        "units, about one edit per second per chat) and records what the chat shows. 🚀"
        for i in range(1, 8)
    )
    + "\n\n[[TOOL]]\n\nThe weather tool says it is sunny, so here is the rest:\n\n"
    + "\n\n".join(
        f"{i}. When the agent stops, the stop task makes a final flush under the lease and "
        "delivers whatever is still unsent: an edit, a new message if you deleted ours, or whole "
        "messages on channels that cannot edit. Rate limits delay the final answer, they never "
        "drop it. ✅"
        for i in range(8, 14)
    )
)


def _tokens(text: str) -> Iterator[str]:
    word = ""
    for ch in text:
        word += ch
        if ch in " \n" and len(word) >= 3:
            yield word
            word = ""
    if word:
        yield word


@contextmanager
def embedded(out: TextIO) -> Iterator[object]:
    """Private Redis + Telegram sandbox + in-process worker; yields the sandbox."""
    from sandbox.telegram import TelegramEmulator
    from tokenrelay.redis_server import RedisServer

    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        sandbox = stack.enter_context(TelegramEmulator())
        os.environ.update(
            TOKENRELAY_BROKER_URL=redis.url,
            TOKENRELAY_REDIS_URL=redis.url,
            TOKENRELAY_TELEGRAM_API_BASE=sandbox.base_url,
            TOKENRELAY_TELEGRAM_BOT_TOKEN="1000:demo-sandbox-token",
        )
        out.write(f"embedded: redis-server {redis.url}, telegram sandbox {sandbox.base_url}\n")
        stack.enter_context(_worker())
        yield sandbox


@contextmanager
def _worker() -> Iterator[None]:
    from tokenrelay.config import Settings
    from workers import runtime
    from workers.app import app

    settings = Settings.from_env()
    runtime.reset()
    app.conf.update(broker_url=settings.broker_url, task_default_queue=settings.queue)
    worker = app.WorkController(
        pool="threads", concurrency=8, loglevel="WARNING", queues=[settings.queue],
        without_mingle=True, without_gossip=True, without_heartbeat=True,
    )
    thread = threading.Thread(target=worker.start, name="demo-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop(in_sighandler=False)
        thread.join(10)


def _show_chat(sandbox, chat_id: str, t0: float, out: TextIO, done: threading.Event) -> None:
    """Print a line each time the sandbox chat changes (sends and edits as they land)."""
    seen = 0
    while not done.is_set() or seen < len(sandbox.calls):
        sandbox.wait_for(lambda e, n=seen: len(e.calls) > n or done.is_set(), timeout=1)
        calls = sandbox.calls
        for call in calls[seen:]:
            msgs = sandbox.messages(chat_id)
            if call.status != 200:
                stamp = f"  [{call.t - t0:6.2f}s]"
                out.write(f"{stamp} {call.method}: HTTP {call.status} {call.error}\n")
                continue
            msg = next((m for m in msgs if m.message_id == call.message_id), None)
            if msg is None:
                continue
            # what the chat showed right after this call, not what it shows by now
            shown = next((text for t, text in msg.history if t >= call.t), msg.text)
            tail = shown[-60:].replace("\n", " ⏎ ")
            out.write(
                f"  [{call.t - t0:6.2f}s] message {msg.message_id} {call.method:<15} "
                f"{len(shown):5d} chars  …{tail}\n"
            )
        seen = len(calls)
        out.flush()


def run(chat_id: str | None, rate: float, out: TextIO = sys.stdout) -> int:
    """Run the demo; returns a process exit code."""
    from producers import StreamProducer

    real = bool(os.environ.get("TOKENRELAY_BROKER_URL"))
    if real and not chat_id:
        out.write("TOKENRELAY_BROKER_URL is set: pass --chat-id to stream to a real chat\n")
        return 2
    with ExitStack() as stack:
        sandbox = None if real else stack.enter_context(embedded(out))
        chat = chat_id or "4242"
        producer = StreamProducer()
        stack.callback(producer.close)
        out.write(f"streaming {len(SAMPLE_REPLY)} characters to telegram chat {chat} "
                  f"at {rate:g} tokens/s …\n")
        done = threading.Event()
        t0 = time.monotonic()
        shower = None
        if sandbox is not None:
            shower = threading.Thread(
                target=_show_chat, args=(sandbox, chat, t0, out, done), daemon=True
            )
            shower.start()
        stream = producer.start(channel="telegram", chat_id=chat, format="markdown",
                                stream_id=f"demo-{uuid.uuid4().hex[:12]}")
        before, _, after = SAMPLE_REPLY.partition("[[TOOL]]")
        for part, tool in ((before, "🌤 calling the weather tool…"), (after, None)):
            for tok in _tokens(part):
                stream.emit(tok)
                time.sleep(1.0 / rate)
            if tool:
                stream.tool_message(tool)
        stop_at = time.monotonic()
        result = stream.stop(timeout=120)
        final_ms = (time.monotonic() - stop_at) * 1000
        done.set()
        if shower is not None:
            shower.join(5)
        out.write("\nStopResult:\n")
        for key, value in result.to_dict().items():
            out.write(f"  {key:16} {value}\n")
        out.write("\nFigures:\n")
        out.write(f"  first visible     {result.first_visible_ms} ms after start\n")
        out.write(f"  stop -> final     {final_ms:.0f} ms\n")
        out.write(f"  sends / edits     {result.sends} / {result.edits}\n")
        if sandbox is not None:
            out.write(f"  HTTP 429s         {sandbox.count(status=429)}\n")
            texts = sandbox.texts(chat)
            out.write(f"  chat shows        {len(texts)} message(s), "
                      f"{sum(len(t) for t in texts)} characters\n")
        return 0 if result.all_sent else 1
