"""The processes of one load run (bench/loadrig.py): the emulator child, the worker
subprocesses and the producer processes that drive the streams."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.harness import ROOT, TOKEN
from tokenrelay.processes import stop_process
from tokenrelay.redis_server import free_port

#: RabbitMQ on this machine (guest/guest); the horizontal section skips it when unreachable
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: tokens per chunk and seconds between chunks: 3 four-char tokens every 50 ms = 60 tokens/s
CHUNK, TICK = 3, 0.05
#: seconds a producer waits for all its StopResults
RESULT_TIMEOUT = 120.0
CTX = mp.get_context("spawn")

#: tokens per chunk and seconds between chunks: 3 four-char tokens every 50 ms = 60 tokens/s
CHUNK, TICK = 3, 0.05
#: seconds a producer waits for all its StopResults
RESULT_TIMEOUT = 120.0
CTX = mp.get_context("spawn")


# -- the emulator in its own process -------------------------------------------------------------
def _sandbox_main(conn: Any, knobs: dict[str, Any]) -> None:
    from sandbox.telegram import TelegramEmulator

    emu = TelegramEmulator(token=TOKEN, **knobs).start()
    conn.send(emu.base_url)
    while True:
        cmd, arg = conn.recv()
        if cmd == "collect":
            chats = {}
            for chat in arg:
                msgs = emu.messages(chat)
                chats[chat] = [
                    (m.created_at, m.text, [t for t, _ in m.history],
                     next(t for t, seen in m.history if seen == m.text))
                    for m in msgs
                ]
            calls = [(c.t, c.status, c.method) for c in emu.calls]
            conn.send((chats, calls))
        elif cmd == "stop":
            emu.stop()
            conn.send(None)
            return


class SandboxProcess:
    """The Telegram emulator served by a spawned child process."""

    def __init__(self, knobs: dict[str, Any]) -> None:
        self._conn, child = CTX.Pipe()
        self.proc = CTX.Process(target=_sandbox_main, args=(child, knobs), daemon=True)
        self.proc.start()
        self.base_url: str = self._conn.recv()

    @property
    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def collect(self, chats: list[str]) -> tuple[dict[str, list[Any]], list[tuple]]:
        self._conn.send(("collect", chats))
        return self._conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.send(("stop", None))
            self._conn.recv()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# -- workers -------------------------------------------------------------------------------------
class WorkerProc:
    """``celery -A workers worker`` with no pool flags (celeryconfig's defaults), logging to a
    file; its flush threads come from TOKENRELAY_FLUSH_THREADS and it serves /metrics."""

    def __init__(self, spec: WorkerSpec, env: dict[str, str]) -> None:
        self.spec = spec
        self.metrics_port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="tokenrelay-load-worker-", suffix=".log")[1])
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q",
            env["TOKENRELAY_QUEUE"], "-n", spec.name.replace("%u", uuid.uuid4().hex[:6]),
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
        ]
        penv = {**os.environ, **env, "TOKENRELAY_FLUSH_THREADS": str(spec.threads),
                "TOKENRELAY_METRICS_PORT": str(self.metrics_port)}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=penv, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def passes(self) -> Counter:
        """Passes by kind (interim/final) from the worker's /metrics."""
        return Counter({k.split(":", 1)[1]: v for k, v in self.metrics().items()
                        if k.startswith("passes:")})

    def metrics(self) -> Counter:
        """The worker's tokenrelay_* counters, summed per name and its kind/outcome/priority
        labels (``passes:interim``, ``ops:edit:ok``, ``lease_takeovers``, …)."""
        out: Counter = Counter()
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                m = re.match(r"tokenrelay_(\w+)_total(?:\{(.*)\})? (\S+)$", line)
                if not m:
                    continue
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))
                parts = [labels[k] for k in ("kind", "priority", "outcome") if k in labels]
                out[":".join([m[1], *parts])] += float(m[3])
        return out

    def problems(self) -> list[str]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [ln for ln in lines if "ERROR" in ln or "Traceback" in ln][:10]

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
        self.log.unlink(missing_ok=True)


# -- producers -----------------------------------------------------------------------------------
def producer_main(
    env: dict[str, str], jobs: list[tuple[str, str]], spec: dict[str, Any], start_at: float,
    written: Any, go_stop: Any, out: Any,
) -> None:
    os.environ.update(env)
    if spec["mode"] == "threads":
        time.sleep(max(0.0, start_at - time.monotonic()))
        rows, late = _drive_threads(env, jobs, spec)
    else:
        rows, late = _drive_loop(env, jobs, start_at, written if spec["hold"] else None,
                                 go_stop)
    t = os.times()
    out.put({"rows": rows, "late": late, "cpu": t.user + t.system})


def _drive_threads(
    env: dict[str, str], jobs: list[tuple[str, str]], spec: dict[str, Any]
) -> tuple[list[dict], float]:
    from bench.agents import Job, drive
    from bench.baseline_seed import SeedHandler
    from bench.harness import OursSink
    from tokenrelay.config import Settings

    if spec["sink"] == "seed":
        sink: Any = SeedHandler(env["TOKENRELAY_TELEGRAM_API_BASE"], TOKEN)
    else:
        sink = OursSink(Settings.from_env(env))
    try:
        replies = drive(sink, [Job(chat, text) for chat, text in jobs])
    finally:
        sink.close()
    rows = [{"chat": r.job.chat_id, "t_start": r.t_start, "t_stop": r.t_stop, "id": None,
             "all_sent": None if r.result is None else bool(getattr(r.result, "all_sent", True))}
            for r in replies]
    return rows, 0.0


def _drive_loop(
    env: dict[str, str], jobs: list[tuple[str, str]], start_at: float, written: Any | None,
    go_stop: Any,
) -> tuple[list[dict], float]:
    from bench.agents import tokens
    from producers import StreamProducer
    from tokenrelay.config import Settings

    producer = StreamProducer(Settings.from_env(env))
    toks = [tokens(text) for _, text in jobs]
    rows: list[dict] = []
    streams = []
    time.sleep(max(0.0, start_at - time.monotonic()))
    for (chat, _), words in zip(jobs, toks, strict=True):
        t_start = time.monotonic()
        s = producer.start(channel="telegram", chat_id=chat)
        for w in words[:CHUNK]:
            s.emit(w)
        streams.append(s)
        rows.append({"chat": chat, "t_start": t_start, "id": s.id})
    t0 = time.monotonic()
    late = 0.0
    longest = max(len(w) for w in toks)
    for k in range(1, (longest + CHUNK - 1) // CHUNK):
        late = max(late, time.monotonic() - (t0 + k * TICK))
        time.sleep(max(0.0, t0 + k * TICK - time.monotonic()))
        for s, words in zip(streams, toks, strict=True):
            for w in words[CHUNK * k : CHUNK * k + CHUNK]:
                s.emit(w)
    if written is not None:  # hold: the parent weighs the steady state, then says stop
        written.wait()
        go_stop.wait()
    handles = []
    for s, row in zip(streams, rows, strict=True):
        row["t_stop"] = time.monotonic()
        handles.append(s.stop(wait=False))
    deadline = time.monotonic() + RESULT_TIMEOUT
    for h, row in zip(handles, rows, strict=True):
        try:
            row["all_sent"] = bool(h.result(timeout=max(0.1, deadline - time.monotonic())).all_sent)
        except Exception as exc:  # counted as not sent; the ledger decides what was lost
            row["all_sent"] = False
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
    producer.close()
    return rows, late


# -- specs and results ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    """One worker process: its Celery node name and its flush-engine threads."""

    name: str = "w1@%h"
    threads: int = 64
