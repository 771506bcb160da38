"""Small helpers shared by the integration tests."""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

SAMPLE = (
    "Sure! Here is how the pipeline works.\n\n"
    "The agent emits tokens; a background pusher moves them to Redis in batches. "
    "A debounced flush task edits the chat message at most once per interval, and the stop "
    "task delivers whatever is still unsent. 😀 Emoji count twice in Telegram's UTF-16 rule.\n\n"
    "That is all there is to it."
)


def tokens(text: str, size: int = 4) -> Iterator[str]:
    """``text`` cut into LLM-sized tokens."""
    for i in range(0, len(text), size):
        yield text[i : i + size]


def emit_paced(stream, text: str, per_second: float = 400.0, size: int = 4) -> None:
    """Emit ``text`` at an LLM-like pace (this paces the producer; it synchronizes nothing)."""
    gap = 1.0 / per_second
    for tok in tokens(text, size):
        stream.emit(tok)
        time.sleep(gap)


def squash(text: str) -> str:
    """Text without whitespace: messages are trimmed at their ends and at split points."""
    return "".join(text.split())


def stream_reply(
    producer: Any, channel: str, chat_id: str, text: str = SAMPLE, per_second: float = 200.0,
    timeout: float = 60.0, **start: Any,
) -> Any:
    """One stream of ``text`` emitted at ``per_second`` tokens/s, then stopped: its StopResult."""
    stream = producer.start(channel=channel, chat_id=chat_id, **start)
    emit_paced(stream, text, per_second=per_second)
    return stream.stop(timeout=timeout)


def stream_concurrently(
    producer: Any, channel: str, chats: list[str], text: str = SAMPLE, per_second: float = 200.0,
    interval: float = 0.1, timeout: float = 60.0,
) -> list[Any]:
    """One stream per chat, all emitting at once from their own threads, then each stopped:
    their StopResults in the order of ``chats``."""
    streams = [producer.start(channel=channel, chat_id=c, interval=interval) for c in chats]
    threads = [threading.Thread(target=emit_paced, args=(s, text, per_second)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [s.stop(timeout=timeout) for s in streams]


@contextlib.contextmanager
def configured(emulator: Any, during: dict[str, Any], after: dict[str, Any]) -> Iterator[Any]:
    """``emulator`` with the knobs ``during`` for the block, set to ``after`` when it ends."""
    emulator.configure(**during)
    try:
        yield emulator
    finally:
        emulator.configure(**after)


def assert_never_backwards(message: Any, why: str, loose: bool = False) -> None:
    """Every text the message showed starts with the one before (``loose``: but for the
    last visible character, which rendering may hold back while markup is open)."""
    for (_, before), (_, after) in itertools.pairwise(message.history):
        shown = before.rstrip()[:-1] if loose else before
        assert after.startswith(shown), (why, before, after)


def assert_retry_after_waited(calls: list[Any], why: str, slack: float = 0.05) -> None:
    """After every 429 among ``calls`` (in arrival order), the next call came no sooner
    than the answer's ``retry_after`` seconds (less ``slack``)."""
    for prev, nxt in itertools.pairwise(calls):
        if prev.status == 429:
            assert nxt.t - prev.t >= prev.retry_after - slack, why


def calls_in(emulator: Any, chat_id: str) -> list[Any]:
    """The emulator's calls about one chat, in arrival order."""
    return [c for c in emulator.calls if c.chat_id == chat_id]


def first_429_and_later_successes(emulator: Any, chat_id: str) -> tuple[list[Any], list[Any]]:
    """The chat's 429 answers, and its successful calls after the first of them."""
    calls = calls_in(emulator, chat_id)
    limited = [c for c in calls if c.status == 429]
    later = [c for c in calls if c.ok and c.t > limited[0].t] if limited else []
    return limited, later


def env_account(monkeypatch: Any, platform: str, names: Iterator[int],
                settings: dict[str, str]) -> str:
    """A new account name on ``platform`` whose TOKENRELAY_* settings are ``settings`` (for
    this test only)."""
    name = f"acct{id(monkeypatch)}x{next(names)}"
    for key, value in settings.items():
        monkeypatch.setenv(f"TOKENRELAY_{platform.upper()}_{name.upper()}_{key.upper()}", value)
    return name


def stream_around_deletion(
    producer: Any, emulator: Any, channel: str, chat_id: str, delete: Callable[[], None],
) -> Any:
    """Stream "first part"; once the chat shows it, ``delete()`` it (the user deletes the
    message) and go on with ", second part": the StopResult."""
    stream = producer.start(channel=channel, chat_id=chat_id, interval=0.1)
    stream.emit("first part")
    assert emulator.wait_for(lambda e: e.texts(chat_id) == ["first part"], timeout=10)
    delete()
    stream.emit(", second part")
    return stream.stop(timeout=30)


# -- issue 6 proofs: processes and servers a test owns ------------------------------------------


class LoggedWorker:
    """A ``celery -A workers worker`` subprocess (tests.procs.WorkerProcess) whose log can be
    awaited: every printed line wakes ``wait_line``."""

    def __init__(self, env: dict[str, str], queue: str, name: str,
                 consume: str | None = None) -> None:
        """``consume``: the queue it takes tasks from (default ``queue``); the flush engine
        always works the schedules of ``env``'s TOKENRELAY_QUEUE."""
        from tests.procs import WorkerProcess

        printed = self.printed = threading.Condition()

        class _Notifying(WorkerProcess):
            def _read(self) -> None:
                assert self.proc.stdout is not None
                for line in self.proc.stdout:
                    with printed:
                        self.lines.append(line)
                        if " ready." in line:
                            self.ready.set()
                        printed.notify_all()

        self.proc = _Notifying(env, consume or queue, name)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return "".join(self.proc.lines)

    def wait_line(self, pattern: str, timeout: float = 30.0, count: int = 1) -> list[str]:
        """Wait until ``count`` log lines match the regex ``pattern``; those lines, or an
        AssertionError showing the log's tail."""
        regex = re.compile(pattern)

        def found() -> list[str]:
            return [line for line in list(self.proc.lines) if regex.search(line)]

        with self.printed:
            self.printed.wait_for(lambda: len(found()) >= count, timeout)
        lines = found()
        assert len(lines) >= count, (
            f"{len(lines)}/{count} worker log lines match {pattern!r}; log tail:\n"
            + "".join(self.proc.lines[-30:])
        )
        return lines

    def ready(self, timeout: float = 30.0) -> LoggedWorker:
        assert self.proc.ready.wait(timeout), "worker not ready:\n" + "".join(self.proc.lines[-30:])
        return self

    def kill(self) -> None:
        self.proc.kill()

    def stop(self) -> None:
        self.proc.stop()


class OwnRedis:
    """A redis-server only this test talks to, on a fixed free port, with ``args`` of its own
    (persistence, eviction): ``restart()`` brings it back on the same port with the same data
    directory, ``down()``/``up()`` split that for outages."""

    def __init__(self, *args: str) -> None:
        import tempfile

        from tokenrelay.redis_server import find_redis_server, free_port

        self.binary = find_redis_server()
        self.port = free_port()
        self.args = list(args)
        self._dir = tempfile.TemporaryDirectory(prefix="tokenrelay-own-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def up(self, timeout: float = 10.0) -> OwnRedis:
        import redis

        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--loglevel", "warning",
             *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, retry=None)
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
                try:
                    client.ping()
                    return self
                except (redis.ConnectionError, redis.BusyLoadingError):
                    assert time.monotonic() < deadline, f"redis-server on {self.port} silent"
                    time.sleep(0.02)  # waits for a process to listen: nothing to subscribe to
        finally:
            client.close()

    def down(self) -> None:
        """SIGTERM (a clean shutdown: an AOF is synced) and wait for the process to end."""
        from tokenrelay.processes import stop_process

        if self.proc is not None:
            stop_process(self.proc, timeout=10)

    def restart(self) -> OwnRedis:
        self.down()
        return self.up()

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port)

    def __enter__(self) -> OwnRedis:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
        self._dir.cleanup()


def assert_exactly_once(sandbox: Any, chat: str, text: str, result: Any) -> None:
    """The chat shows ``text`` once: its messages are the ones the result names, they carry
    the text (whitespace aside) and none of them ever moved backwards."""
    messages = sandbox.messages(chat)
    assert result.all_sent, (chat, result)
    assert [str(m.message_id) for m in messages] == list(result.message_ids), (
        chat, "a message the result does not name (a copy)", result
    )
    assert squash("".join(m.text for m in messages)) == squash(text), chat
    for message in messages:
        assert_never_backwards(message, f"chat {chat} moved backwards")


def worker_clock_offset(worker: LoggedWorker) -> float:
    """Seconds the worker's clock is ahead of ours, read from its newest log timestamp (Celery
    prints ``[YYYY-mm-dd HH:MM:SS,mmm: LEVEL/...]`` in the worker's local time)."""
    import datetime as dt

    stamp = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}): ")
    for line in reversed(list(worker.proc.lines)):
        match = stamp.match(line)
        if match:
            shown = dt.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S")
            return (shown - dt.datetime.now()).total_seconds()
    raise AssertionError("no timestamped line in the worker's log")


def wait_quiet(store: Any, stream_ids: list[str], timeout: float = 10.0) -> None:
    """Wait until no pass holds or awaits these streams (no lease, no armed tick): the passes
    that showed their text have also recorded it."""
    from tokenrelay.store import Keys

    deadline = time.monotonic() + timeout
    while True:
        pipe = store.redis.pipeline(transaction=False)
        for sid in stream_ids:
            pipe.exists(Keys.of(sid).lease, Keys.of(sid).tick)
        if not any(pipe.execute()):
            return
        assert time.monotonic() < deadline, "the passes never ended"
        time.sleep(0.01)  # reads Redis until the passes have ended; no pub/sub for that
