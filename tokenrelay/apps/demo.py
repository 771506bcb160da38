"""``tokenrelay demo``: stream a sample reply end to end and show the chat as it grows.

With no TOKENRELAY_* URLs set it runs everything embedded: a private redis-server, the sandbox
of the chosen channel (``--channel``, any one in ``sandbox.registry``) and a Celery worker in
this process, and prints the live chat page's URL where the sandbox serves one. With
TOKENRELAY_BROKER_URL set it only produces: your workers deliver to the chat named by
``--chat-id``. ``examples/`` reuse :func:`backend` the same way.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, TextIO

#: chat the demo streams to in each channel's sandbox when no --chat-id is given
DEMO_CHATS: dict[str, str] = {
    "telegram": "4242",
    "webhook": "demo-room",
    "slack": "C0DEMO4242",
    "discord": "1000000000000004242",
    "matrix": "!demo:sandbox.local",
    "feishu": "oc_demo4242",
}
#: for a channel not in DEMO_CHATS (most platforms accept a number)
FALLBACK_CHAT = "4242"

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


def demo_chat(channel: str) -> str:
    """The sandbox chat the demo and the examples use on ``channel``."""
    return DEMO_CHATS.get(channel, FALLBACK_CHAT)


@contextmanager
def embedded(out: TextIO, channel: str = "telegram") -> Iterator[Any]:
    """Private Redis + the channel's sandbox + an in-process worker; yields the sandbox."""
    from sandbox.registry import emulator_class
    from tokenrelay.redis_server import RedisServer

    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        sandbox = stack.enter_context(emulator_class(channel)())
        os.environ.update(
            TOKENRELAY_BROKER_URL=redis.url,
            TOKENRELAY_REDIS_URL=redis.url,
            **sandbox.tokenrelay_env(),
        )
        out.write(f"embedded: redis-server {redis.url}, {channel} sandbox\n")
        stack.enter_context(_worker())
        yield sandbox


@contextmanager
def backend(out: TextIO, channel: str = "telegram") -> Iterator[Any]:
    """The embedded stack (yields its sandbox) unless TOKENRELAY_BROKER_URL is set (yields None:
    your own Redis and workers deliver)."""
    if os.environ.get("TOKENRELAY_BROKER_URL"):
        yield None
        return
    with embedded(out, channel) as sandbox:
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


def _count_429(sandbox: Any) -> int:
    calls = sandbox.ledger()["calls"] if hasattr(sandbox, "ledger") else []
    return sum(c["count"] for c in calls if c["status"] == 429)


def _show_chat(sandbox: Any, chat_id: str, t0: float, out: TextIO, done: threading.Event) -> None:
    """Print a line each time the sandbox chat changes: a message sent or edited, new 429s."""
    shown: list[str] = []
    limited = 0
    while True:
        finished = done.is_set()  # read before the chat: the last look happens after stop
        sandbox.wait_for(lambda e, s=shown: e.texts(chat_id) != s or done.is_set(), timeout=1)
        texts, now = sandbox.texts(chat_id), time.monotonic() - t0
        for i, text in enumerate(texts):
            if i < len(shown) and shown[i] == text:
                continue
            what = "sent" if i >= len(shown) else "edited"
            tail = text[-60:].replace("\n", " ⏎ ")
            out.write(f"  [{now:6.2f}s] message {i + 1} {what:<6} {len(text):5d} chars  …{tail}\n")
        shown = texts
        if _count_429(sandbox) > limited:
            limited = _count_429(sandbox)
            out.write(f"  [{now:6.2f}s] HTTP 429 (rate limited), {limited} so far\n")
        out.flush()
        if finished:
            return


def _keep_up(url: str, out: TextIO) -> None:
    """Keep the embedded sandbox (and its chat page) up until Ctrl-C."""
    out.write(f"\nThe chat page stays up at {url} — press Ctrl-C to quit.\n")
    out.flush()
    with suppress(KeyboardInterrupt):
        threading.Event().wait()


def run(
    chat_id: str | None,
    rate: float,
    out: TextIO = sys.stdout,
    channel: str = "telegram",
    wait: bool | None = None,
) -> int:
    """Run the demo; returns a process exit code.

    ``wait``: keep the sandbox's chat page up until Ctrl-C once the reply is complete (default:
    when stdin is a terminal, so CI and pipes never hang).
    """
    from producers import StreamProducer
    from sandbox.page import chat_page_url

    real = bool(os.environ.get("TOKENRELAY_BROKER_URL"))
    if real and not chat_id:
        out.write("TOKENRELAY_BROKER_URL is set: pass --chat-id to stream to a real chat\n")
        return 2
    if wait is None:
        wait = sys.stdin is not None and sys.stdin.isatty()
    with ExitStack() as stack:
        sandbox = stack.enter_context(backend(out, channel))
        chat = chat_id or demo_chat(channel)
        page = chat_page_url(sandbox, chat) if sandbox is not None else None
        if page:
            out.write(f"live chat page: {page}\n")
        producer = StreamProducer()
        stack.callback(producer.close)
        out.write(f"streaming {len(SAMPLE_REPLY)} characters to {channel} chat {chat} "
                  f"at {rate:g} tokens/s …\n")
        done = threading.Event()
        t0 = time.monotonic()
        shower = None
        if sandbox is not None:
            shower = threading.Thread(
                target=_show_chat, args=(sandbox, chat, t0, out, done), daemon=True
            )
            shower.start()
        stream = producer.start(channel=channel, chat_id=chat, format="markdown",
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
            out.write(f"  HTTP 429s         {_count_429(sandbox)}\n")
            texts = sandbox.texts(chat)
            out.write(f"  chat shows        {len(texts)} message(s), "
                      f"{sum(len(t) for t in texts)} characters\n")
        if page and wait:
            _keep_up(page, out)
        return 0 if result.all_sent else 1
