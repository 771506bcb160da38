"""Adapters from popular agent frameworks' streams to a Stream, without importing them.

    from producers.integrations import pipe_openai
    pipe_openai(stream, client.chat.completions.create(..., stream=True))

    handler = TokenRelayCallback(stream)      # LangChain: callbacks=[handler]
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Protocol


class Emitter(Protocol):
    def emit(self, token: str) -> None: ...
    def tool_message(self, text: str) -> None: ...


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def openai_delta(chunk: Any) -> str:
    """The text of one OpenAI-style streaming chunk (``choices[0].delta.content``), or ""."""
    choices = _get(chunk, "choices") or []
    if not choices:
        return ""
    content = _get(_get(choices[0], "delta") or {}, "content")
    return content if isinstance(content, str) else ""


def pipe_openai(stream: Emitter, chunks: Iterable[Any]) -> str:
    """Emit every chunk's text into ``stream``; returns the whole reply."""
    parts = []
    for chunk in chunks:
        text = openai_delta(chunk)
        if text:
            stream.emit(text)
            parts.append(text)
    return "".join(parts)


async def apipe_openai(stream: Emitter, chunks: AsyncIterable[Any]) -> str:
    """The asyncio twin of :func:`pipe_openai` (emit never blocks the loop)."""
    parts = []
    async for chunk in chunks:
        text = openai_delta(chunk)
        if text:
            stream.emit(text)
            parts.append(text)
    return "".join(parts)


class TokenRelayCallback:
    """A LangChain-style callback handler: tokens stream, tool calls become boundaries.

    Duck-typed (no LangChain import): pass it in ``callbacks=[...]``.
    """

    raise_error = False
    run_inline = True
    ignore_llm = ignore_chain = ignore_agent = ignore_retriever = ignore_chat_model = False

    def __init__(self, stream: Emitter, tool_notice: str = "🔧 {name}…") -> None:
        self.stream = stream
        self.tool_notice = tool_notice

    def on_llm_new_token(self, token: str, **_: Any) -> None:
        if token:
            self.stream.emit(token)

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, **_: Any) -> None:
        name = (serialized or {}).get("name") or "tool"
        self.stream.tool_message(self.tool_notice.format(name=name))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)
