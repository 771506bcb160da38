"""examples/: each runs as its one documented command, judged from the sandbox's ledger.

With the session's TOKENRELAY_* environment the examples only produce and the session's worker
delivers into the ``telegram`` sandbox fixture; one run without it checks the embedded path
(its own redis-server, sandbox and worker), judged from the sandbox chats it prints.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.integration


def example(name: str) -> ModuleType:
    """The example's module, for its constants (it imports its neighbour ``_sandbox``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))
    return importlib.import_module(name)


def run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """``python examples/<script> args…``; returns its output, asserting exit status 0."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=ROOT, capture_output=True,
        text=True, timeout=180, env=os.environ if env is None else env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_openai_agent(producer, telegram, chat_id) -> None:
    run("openai_agent.py", "--chat-id", chat_id)
    # markdown rendered for Telegram: the chat shows the words, not the ** markers
    assert telegram.texts(chat_id) == [example("openai_agent").ANSWER.replace("**", "")]


def test_langchain_agent_with_a_tool_call(producer, telegram, chat_id) -> None:
    run("langchain_agent.py", "--chat-id", chat_id)
    (text,) = telegram.texts(chat_id)
    thought, notice, answer = text.split("\n\n")
    assert thought.startswith("Let me check the current weather")
    assert notice == "🔧 calling get_weather…"
    observation = example("langchain_agent").get_weather("Lisbon").split(": ", 1)[1]
    assert answer.startswith(f"It is {observation}.")


def test_asyncio_bot_many_chats(producer, telegram, chat_id) -> None:
    first = 7_000_000 + int(chat_id) * 100  # a block of chats nobody else in the session uses
    output = run("asyncio_bot.py", "--chats", "25", "--chat-id", str(first))
    bot = example("asyncio_bot")
    for i in range(25):
        assert telegram.texts(first + i) == [bot.answer(i)], f"chat {first + i}"
    assert output.count("all_sent=True") == 25


def test_embedded_run_needs_no_services() -> None:
    """No TOKENRELAY_* set: the example brings its own Redis, sandbox and worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENRELAY_")}
    output = run("openai_agent.py", env=env)
    assert "embedded: redis-server" in output
    line = next(x for x in output.splitlines() if x.startswith("sandbox chats: "))
    chats = json.loads(line.removeprefix("sandbox chats: "))
    assert chats == {"4242": [example("openai_agent").ANSWER.replace("**", "")]}
