"""What every example shares: where to deliver, a producer, and what the chat shows at the end.

With no TOKENRELAY_BROKER_URL set, an example starts the same embedded stack as
``tokenrelay demo`` (a private redis-server, the channel's sandbox, an in-process worker);
with it set, it only produces and your workers deliver (``--chat-id`` names the chat).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from producers import StreamProducer
from tokenrelay.apps.demo import backend, demo_chat
from tokenrelay.results import StopResult


@dataclass
class Session:
    """An example's run: the producer, the chat to stream to, the sandbox (None with your own
    workers) and the channel."""

    producer: StreamProducer
    chat_id: str
    sandbox: Any
    channel: str


@contextmanager
def session(description: str, argv: Sequence[str] | None = None) -> Iterator[Session]:
    """Parse ``--chat-id``/``--channel``, start the embedded stack when needed, yield a Session."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--chat-id", help="chat to stream to (default: the sandbox demo chat)")
    parser.add_argument("--channel", default="telegram", help="platform (default telegram)")
    args = parser.parse_args(argv)
    with backend(sys.stdout, args.channel) as sandbox:
        producer = StreamProducer()
        try:
            yield Session(producer, args.chat_id or demo_chat(args.channel), sandbox, args.channel)
        finally:
            producer.close()


def report(run: Session, results: Sequence[StopResult], chats: Sequence[str]) -> int:
    """Print each StopResult (and, embedded, what the sandbox chats show); the exit code."""
    for result in results:
        print(f"{result.chat_id}: {result.how}, all_sent={result.all_sent}, "
              f"{len(result.message_ids)} message(s), {result.text_chars} chars")
    if run.sandbox is not None:
        shown = {chat: run.sandbox.texts(chat) for chat in chats}
        print("sandbox chats: " + json.dumps(shown, ensure_ascii=False))
    return 0 if results and all(r.all_sent for r in results) else 1
