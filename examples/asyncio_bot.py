"""An asyncio bot answering many chats at once, each reply streamed with ``producer.astream``.

    python examples/asyncio_bot.py --chats 20  # embedded Redis + Telegram sandbox + worker

``emit`` never blocks the event loop; only ``stop`` waits (in a thread) for the final delivery.
Chats are ``--chat-id``, ``--chat-id``+1, … (numeric ids, as Telegram's private chats).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence

from _sandbox import Session, report, session

from tokenrelay.results import StopResult

#: seconds between tokens of one reply
TOKEN_GAP = 0.005


def answer(n: int) -> str:
    """The reply to chat number ``n`` (different per chat, so mix-ups would show)."""
    return (
        f"Hello, chat #{n}! Your order {1000 + n} has shipped and should arrive in "
        f"{2 + n % 5} days. Reply STOP to pause these updates."
    )


async def fake_model(text: str) -> AsyncIterator[str]:
    """An async token source, like an async LLM client's stream."""
    for i in range(0, len(text), 5):
        await asyncio.sleep(TOKEN_GAP)
        yield text[i : i + 5]


async def reply(run: Session, chat_id: str, text: str) -> StopResult:
    async with run.producer.astream(channel=run.channel, chat_id=chat_id) as stream:
        async for token in fake_model(text):
            stream.emit(token)
    return await stream.stop()  # stopping again returns the result of the stop on exit


async def serve(run: Session, chats: list[str]) -> list[StopResult]:
    return list(await asyncio.gather(*(reply(run, c, answer(i)) for i, c in enumerate(chats))))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    count = 10
    if "--chats" in args:  # this example's own option; the rest go to session()
        at = args.index("--chats")
        count = int(args[at + 1])
        del args[at : at + 2]
    with session("asyncio bot with many concurrent chats", args) as run:
        first = int(run.chat_id)
        chats = [str(first + i) for i in range(count)]
        results = asyncio.run(serve(run, chats))
        return report(run, results, chats)


if __name__ == "__main__":
    sys.exit(main())
