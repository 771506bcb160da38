"""The agents of the benchmarks: deterministic replies, LLM-sized tokens, paced writers."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.harness import STOP_TIMEOUT, Sink

_VOCABULARY = (
    "the agent streams a reply while the model is still thinking about tokens chat message "
    "edits limits worker queue budget final answer delivered reliably across every platform"
)
_WORDS = _VOCABULARY.split()
_EMOJI = "😀🚀✅🔍"


def reply_text(chars: int, seed: int = 0) -> str:
    """A reply of exactly ``chars`` characters: a ``[seed]`` tag, sentences, paragraphs, emoji.

    Deterministic per ``seed``; different seeds share no long run of text, so a message can be
    attributed to its reply even when several replies share one chat.
    """
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < chars + 20:
        word = rng.choice(_WORDS)
        if rng.random() < 0.04:
            word += "." + rng.choice(("\n\n", " ")) + rng.choice(_EMOJI)
        out.append(word)
        size += len(word) + 1
    text = f"[{seed}] {' '.join(out)}"[:chars]
    return text[:-1] + "." if text[-1].isspace() else text


def tokens(text: str, size: int = 4) -> list[str]:
    """``text`` cut into LLM-sized tokens."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class Job:
    """One reply an agent writes: where, what, how fast, and when it starts."""

    chat_id: str
    text: str
    rate: float = 60.0
    delay: float = 0.0


@dataclass
class Reply:
    """What the agent did, on the same clock as the emulator's ledger (time.monotonic())."""

    job: Job
    t_start: float = 0.0
    t_stop: float = 0.0
    result: Any = None


def write(sink: Sink, job: Job, reply: Reply) -> None:
    """Start the stream, emit its tokens on the job's schedule, stop it."""
    time.sleep(job.delay)
    reply.t_start = time.monotonic()
    stream = sink.start(job.chat_id)
    for i, tok in enumerate(tokens(job.text)):
        wait = reply.t_start + i / job.rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        stream.emit(tok)
    reply.t_stop = time.monotonic()
    reply.result = stream.stop()


def drive(sink: Sink, jobs: Sequence[Job]) -> list[Reply]:
    """Run one agent thread per job, all at once; returns when every stream has stopped."""
    replies = [Reply(job) for job in jobs]
    threads = [
        threading.Thread(target=write, args=(sink, job, rep), daemon=True)
        for job, rep in zip(jobs, replies, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STOP_TIMEOUT + 120)
    return replies
