"""A LangChain-style agent with a tool call, streamed through ``TokenRelayCallback``.

    python examples/langchain_agent.py         # embedded Redis + Telegram sandbox + worker

No LangChain import: ``MiniAgent`` drives its callbacks the way an AgentExecutor does
(``on_llm_new_token`` per token, ``on_tool_start``/``on_tool_end`` around the tool), so the
handler below is exactly what you would pass as ``callbacks=[handler]`` to a real agent.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _sandbox import report, session

from producers.integrations import TokenRelayCallback

#: seconds between tokens, roughly a model's pace
TOKEN_GAP = 0.01


def get_weather(city: str) -> str:
    """The agent's tool."""
    return f"{city}: 21 °C, clear sky, light breeze from the west"


class MiniAgent:
    """Thinks, calls one tool, answers with its result; reports through LangChain callbacks."""

    def __init__(self, tools: dict[str, Callable[[str], str]], callbacks: list[Any]) -> None:
        self.tools = tools
        self.callbacks = callbacks

    def _emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        for handler in self.callbacks:
            getattr(handler, event)(*args, **kwargs)

    def _say(self, text: str) -> str:
        self._emit("on_llm_start", {"name": "mini-llm"}, [text])
        for token in re.findall(r"\S*\s*", text):
            if token:
                time.sleep(TOKEN_GAP)
                self._emit("on_llm_new_token", token)
        self._emit("on_llm_end", {"text": text})
        return text

    def invoke(self, question: str) -> str:
        self._emit("on_chain_start", {"name": "MiniAgent"}, {"input": question})
        thought = self._say("Let me check the current weather in Lisbon before I answer.")
        self._emit("on_tool_start", {"name": "get_weather"}, "Lisbon")
        observation = self.tools["get_weather"]("Lisbon")
        self._emit("on_tool_end", observation)
        answer = self._say(
            f"It is {observation.split(': ', 1)[1]}. A good afternoon for a walk along the "
            "river to Belém; take a light jacket for the evening."
        )
        self._emit("on_chain_end", {"output": answer})
        return thought + answer


def main(argv: Sequence[str] | None = None) -> int:
    with session("LangChain-style agent with a tool call", argv) as run:
        stream = run.producer.start(channel=run.channel, chat_id=run.chat_id)
        handler = TokenRelayCallback(stream, tool_notice="🔧 calling {name}…")
        MiniAgent({"get_weather": get_weather}, callbacks=[handler]).invoke(
            "Should I go for a walk in Lisbon this afternoon?"
        )
        result = stream.stop(timeout=60)
        return report(run, [result], [run.chat_id])


if __name__ == "__main__":
    sys.exit(main())
