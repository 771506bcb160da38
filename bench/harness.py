"""Shared setup of every benchmark: the rig and the two sinks under test.

The rig is one private redis-server, the Telegram emulator (realistic default limits) in this
process, and one ``celery -A workers worker`` subprocess with tokenrelay's production defaults
(only the URLs, the queue and the bot token are set). Both sides of a comparison run against
the same emulator, one after the other, each on a freshly reset ledger.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.baseline_seed import SeedHandler
from tokenrelay.processes import stop_process

ROOT = Path(__file__).resolve().parents[1]
#: fake bot token the emulator accepts (loopback only)
TOKEN = "424242:bench-sandbox-token"
#: emulator knobs every side starts from (the emulator's realistic default limits stay)
CLEAN = {"latency": 0.0, "error_rate": 0.0, "drop_rate": 0.0, "drop_after_rate": 0.0}
#: seconds an agent waits for tokenrelay's StopResult before counting the reply incomplete
STOP_TIMEOUT = 90.0


class ReplyStream(Protocol):
    def emit(self, token: str) -> None: ...

    def stop(self) -> Any: ...


class Sink(Protocol):
    """Where an agent streams its replies: tokenrelay or the seed-style baseline."""

    name: str

    def start(self, chat_id: str) -> ReplyStream: ...

    def close(self) -> None: ...


class OursSink:
    """tokenrelay's producer API, exactly as an agent uses it."""

    name = "tokenrelay"

    def __init__(self, settings: Any) -> None:
        from producers import StreamProducer

        self.producer = StreamProducer(settings)

    def start(self, chat_id: str) -> ReplyStream:
        return _OursStream(self.producer.start(channel="telegram", chat_id=chat_id))

    def close(self) -> None:
        self.producer.close()


class _OursStream:
    def __init__(self, stream: Any) -> None:
        self.emit = stream.emit
        self._stream = stream

    def stop(self) -> Any:
        from producers import StopTimeout

        try:
            return self._stream.stop(timeout=STOP_TIMEOUT)
        except StopTimeout:
            return None


class Worker:
    """``celery -A workers worker --pool threads`` in a subprocess, logging to a temp file."""

    def __init__(self, env: dict[str, str]) -> None:
        self.log = Path(tempfile.mkstemp(prefix="tokenrelay-bench-worker-", suffix=".log")[1])
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "threads",
            "-Q", env["TOKENRELAY_QUEUE"], "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
        ]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        self._seen = 0

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def problems(self) -> list[str]:
        """WARNING/ERROR lines the worker logged since the last call."""
        lines = self.log.read_text(errors="replace").splitlines()
        new, self._seen = lines[self._seen :], len(lines)
        return [ln for ln in new if "WARNING" in ln or "ERROR" in ln or "Traceback" in ln]

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.log.unlink(missing_ok=True)


@dataclass
class Rig:
    """Everything a benchmark needs; ``quick`` asks for smaller, shorter scenarios."""

    emu: Any
    env: dict[str, str]
    worker: Worker
    quick: bool = False
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def scale(self, full: float, quick: float) -> Any:
        return quick if self.quick else full

    def chat(self, group: bool = False) -> str:
        """A chat id no other scenario or side of this run uses (negative: a group)."""
        n = next(self._ids)
        return str(-(1_000_000 + n)) if group else str(70_000_000 + n)

    def settings(self, **overrides: str) -> Any:
        from tokenrelay.config import Settings

        return Settings.from_env({**self.env, **overrides})

    def sinks(self) -> list[Sink]:
        """tokenrelay, then the seed-style baseline."""
        return [OursSink(self.settings()), SeedHandler(self.emu.base_url, TOKEN)]

    @contextmanager
    def side(self, **knobs: Any) -> Iterator[Any]:
        """A fresh emulator ledger and flood state, with ``knobs`` on top of the clean ones."""
        self.emu.reset()
        self.emu.configure(**{**CLEAN, **knobs})
        try:
            yield self.emu
        finally:
            self.emu.configure(**CLEAN)
            for line in self.worker.problems()[:20]:
                print(f"    [worker] {line[:300]}", file=sys.stderr)


@contextmanager
def rig(quick: bool = False) -> Iterator[Rig]:
    """Start the private Redis, the emulator and the worker; tear all three down after."""
    from sandbox.telegram import TelegramEmulator
    from tokenrelay.redis_server import RedisServer

    with ExitStack() as stack:
        emu = stack.enter_context(TelegramEmulator())
        redis = stack.enter_context(RedisServer())
        env = {
            "TOKENRELAY_BROKER_URL": redis.url,
            "TOKENRELAY_REDIS_URL": redis.url,
            "TOKENRELAY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": TOKEN,
            "TOKENRELAY_TELEGRAM_API_BASE": emu.base_url,
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        stack.callback(_restore, saved)
        worker = Worker(env)
        stack.callback(worker.stop)
        worker.wait_ready()
        r = Rig(emu, env, worker, quick)
        _warm_up(r)
        yield r


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _warm_up(r: Rig) -> None:
    """One short reply through the worker, so no benchmark pays its import and connect costs."""
    sink = OursSink(r.settings())
    try:
        with r.side():
            s = sink.start(r.chat())
            s.emit("warming up")
            s.stop()
    finally:
        sink.close()
