"""An OpenAI-style streaming agent: its chunks are piped into a chat message that grows live.

    python examples/openai_agent.py            # embedded Redis + Telegram sandbox + worker

The chunk generator has the shape of ``client.chat.completions.create(..., stream=True)``; with
the real client, pass its stream to ``pipe_openai`` the same way.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from _sandbox import report, session

from producers.integrations import pipe_openai

ANSWER = (
    "Here is a plan for your trip to Lisbon:\n\n"
    "1. **Morning**: take tram 28 up to Alfama and walk down to the river.\n"
    "2. **Lunch**: grilled sardines near the Time Out market.\n"
    "3. **Afternoon**: Belém tower, then pastéis de nata while they are warm.\n\n"
    "Enjoy the view from the Miradouro da Senhora do Monte at sunset! 🌅"
)
#: seconds between chunks, roughly a model's pace
CHUNK_GAP = 0.01


def fake_completion_stream(text: str, model: str = "gpt-4o-mini") -> Iterator[dict[str, Any]]:
    """Chunks shaped like OpenAI's streamed chat completion: a role delta, content deltas of a
    word or so, then an empty delta with ``finish_reason="stop"``."""
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-example",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S*\s*", text):
        if piece:
            time.sleep(CHUNK_GAP)
            yield chunk({"content": piece})
    yield chunk({}, finish="stop")


def main(argv: Sequence[str] | None = None) -> int:
    with session("OpenAI-style streaming agent", argv) as run:
        stream = run.producer.start(channel=run.channel, chat_id=run.chat_id, format="markdown")
        pipe_openai(stream, fake_completion_stream(ANSWER))
        result = stream.stop(timeout=60)
        return report(run, [result], [run.chat_id])


if __name__ == "__main__":
    sys.exit(main())
