"""Credentials never in logs: a stream through 5xx answers, dropped connections, 429s and a
wrong token on another account, with a Celery worker at DEBUG in its own process and the
producer's logs at DEBUG; every line either side prints is searched for every secret."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from sandbox.telegram.ledger import SandboxCall
from tests.procs import ROOT, WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: random per run, so no line can hold one by chance or from an earlier run
BOT_ID, BOT_SECRET = str(secrets.randbelow(9 * 10**9) + 10**9), secrets.token_urlsafe(26)
BOT_TOKEN = f"{BOT_ID}:{BOT_SECRET}"
WRONG_ID, WRONG_SECRET = str(secrets.randbelow(9 * 10**9) + 10**9), secrets.token_urlsafe(26)
PASSWORD = secrets.token_hex(16)
SECRETS = {
    "bot token": BOT_TOKEN, "bot id": BOT_ID, "bot secret": BOT_SECRET,
    "wrong token's id": WRONG_ID, "wrong token's secret": WRONG_SECRET,
    "redis password": PASSWORD,
}


class DebugWorker(WorkerProcess):
    """``celery -A workers worker`` at DEBUG; ``lines`` holds all it prints (stdout+stderr)."""

    def __init__(self, env: dict[str, str], queue: str, name: str) -> None:
        self.ready = threading.Event()
        self.lines: list[str] = []
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queue,
            "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "DEBUG",
            "--without-mingle", "--without-gossip",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[TelegramEmulator, dict[str, str]]]:
    """A password-protected Redis and a sandbox of this module's own (faults are ours)."""
    with RedisServer(password=PASSWORD) as redis, TelegramEmulator(token=BOT_TOKEN) as tg:
        env = {
            "TOKENRELAY_BROKER_URL": redis.url,
            "TOKENRELAY_REDIS_URL": redis.url,
            "TOKENRELAY_QUEUE": f"tokenrelay-logs-{uuid.uuid4().hex[:8]}",
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TOKENRELAY_TELEGRAM_OTHER_BOT_TOKEN": f"{WRONG_ID}:{WRONG_SECRET}",
            "TOKENRELAY_TELEGRAM_API_BASE": tg.base_url,
            "TOKENRELAY_FLUSH_INTERVAL": "0.2",
            # faster than the sandbox allows below: the chat gets 429s
            "TOKENRELAY_TELEGRAM_CHAT_RATE": "5",
            "TOKENRELAY_HTTP_TIMEOUT": "2",
        }
        yield tg, env


#: the sandbox without faults, and roomy limits
CALM = {"error_rate": 0.0, "drop_rate": 0.0, "drop_after_rate": 0.0, "private_rate": 30.0}
#: each fault in turn: the knobs that cause it, and how the ledger shows it
FAULTS: list[tuple[dict[str, float], Callable[[SandboxCall], bool]]] = [
    ({"error_rate": 1.0}, lambda c: c.status == 500),
    ({"drop_rate": 1.0}, lambda c: c.fault == "drop"),
    ({"drop_after_rate": 1.0}, lambda c: c.fault == "drop_after"),
    ({"private_rate": 0.5, "private_burst": 1}, lambda c: c.status == 429),
]


def _through_each_fault(tg: TelegramEmulator, stream, chat: str) -> list[str]:
    """Emit while each fault is on until the chat's calls show it; the words emitted."""
    words: list[str] = []
    for knobs, shows in FAULTS:
        met = partial(_met, shows=shows, chat=chat)
        tg.configure(**knobs)
        try:
            deadline = time.monotonic() + 15
            while not tg.wait_for(met, timeout=0.3):
                assert time.monotonic() < deadline, f"the worker never met {knobs}: {tg.calls}"
                words.append(f" w{len(words)}")
                stream.emit(words[-1])  # new text: a reason for the worker to call again
        finally:
            tg.configure(**CALM)
    return words


def _met(tg: TelegramEmulator, shows: Callable[[SandboxCall], bool], chat: str) -> bool:
    return any(shows(c) for c in tg.calls if c.chat_id == chat)


def test_no_secret_in_any_log_line_through_faults(stack, caplog) -> None:
    tg, env = stack
    caplog.set_level("DEBUG")
    worker = DebugWorker(env, env["TOKENRELAY_QUEUE"], "logs")
    producer = StreamProducer(Settings.from_env(env))
    chat, other_chat = "61001", "61002"
    tg.configure(**CALM)
    try:
        assert worker.ready.wait(30), "".join(worker.lines[-30:])
        stream = producer.start(channel="telegram", chat_id=chat)
        stream.emit("Faults ahead:")
        assert tg.wait_for(lambda e: e.texts(chat), timeout=10), "the first send, fault-free"
        words = _through_each_fault(tg, stream, chat)
        result = stream.stop(timeout=30)
        refused = producer.start(channel="telegram", chat_id=other_chat, account="other")
        refused.emit("this account's token is wrong")
        failed = refused.stop(timeout=20)
    finally:
        producer.close()
        worker.stop()
    assert result.all_sent, result
    assert tg.texts(chat) == ["Faults ahead:" + "".join(words)]
    assert failed.how == "failed" and "Unauthorized" in (failed.error or ""), failed
    assert tg.count(chat_id=other_chat, status=401) >= 1

    worker_log = "".join(worker.lines)
    assert "DEBUG/" in worker_log and "ready." in worker_log, "the worker logged at DEBUG"
    # urllib3 logs every request path, and Telegram's carry the token: masked, not missing
    assert worker_log.count('"POST /bot***/') >= len(FAULTS) + 2, worker_log[-3000:]
    everything = {
        "worker output": worker_log,
        "producer log": caplog.text,
        "stop results": f"{result!r} {failed!r} {result.error} {failed.error}",
    }
    for source, text in everything.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} is in the {source}: {_around(text, secret)}"


def _around(text: str, secret: str, width: int = 200) -> str:
    at = text.find(secret)
    return text[max(0, at - width) : at + len(secret) + width]
