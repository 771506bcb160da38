"""Framework adapters feed a real stream; the sandbox shows the result."""

from __future__ import annotations

import asyncio

import pytest

from producers.integrations import TokenRelayCallback, apipe_openai, openai_delta, pipe_openai


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _chunk(text):
    return {"choices": [{"delta": {"content": text}}]}


def test_openai_delta_reads_dicts_and_objects() -> None:
    assert openai_delta(_chunk("hi")) == "hi"
    assert openai_delta(_Obj(choices=[_Obj(delta=_Obj(content="yo"))])) == "yo"
    assert openai_delta({"choices": []}) == ""
    assert openai_delta({"choices": [{"delta": {"role": "assistant"}}]}) == ""


@pytest.mark.integration
def test_pipe_openai_stream(producer, telegram, chat_id) -> None:
    with producer.stream(channel="telegram", chat_id=chat_id) as s:
        assert pipe_openai(s, [_chunk("Hel"), {"choices": []}, _chunk("lo!")]) == "Hello!"
    assert telegram.texts(chat_id) == ["Hello!"]


@pytest.mark.integration
def test_apipe_openai_stream(producer, telegram, chat_id) -> None:
    async def chunks():
        for t in ("async ", "chunks"):
            yield _chunk(t)

    async def main():
        async with producer.astream(channel="telegram", chat_id=chat_id) as s:
            await apipe_openai(s, chunks())

    asyncio.run(main())
    assert telegram.texts(chat_id) == ["async chunks"]


@pytest.mark.integration
def test_langchain_style_callbacks(producer, telegram, chat_id) -> None:
    with producer.stream(channel="telegram", chat_id=chat_id) as s:
        cb = TokenRelayCallback(s)
        cb.on_llm_new_token("Checking")
        cb.on_tool_start({"name": "weather"}, "Paris")
        cb.on_tool_end("sunny")  # any other callback is accepted and ignored
        cb.on_llm_new_token("Sunny.")
    assert telegram.texts(chat_id) == ["Checking\n\n🔧 weather…\n\nSunny."]
