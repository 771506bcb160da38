"""The production-load rig: every part in its own process, so no GIL distorts another's figures.

One run (``run_load``) starts a private redis-server, the Telegram emulator in a child process,
one or more ``celery -A workers worker`` subprocesses and one or more producer processes
(multiprocessing, spawn). Producers start their streams, write them at 60 tokens/s, wait on a
barrier (the parent measures a steady state there), stop them and report; the emulator child
then hands back its ledger (message histories, call times) and the parent turns it into figures.
Every clock is ``time.monotonic()``, which all processes of one host share on Linux.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.harness import TOKEN
from bench.judge import pct, squash
from bench.loadprocs import (
    CTX,
    RESULT_TIMEOUT,
    SandboxProcess,
    WorkerProc,
    WorkerSpec,
    producer_main,
)
from bench.redisstats import OpsSampler, commandstats, key_bytes, monitor_window, redis_info, ttls
from tokenrelay.redis_server import RedisServer

#: RabbitMQ on this machine (guest/guest); the horizontal section skips it when unreachable
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class LoadSpec:
    """One run: how many streams, for how long, on which workers, broker and emulator knobs."""

    label: str
    streams: int
    seconds: float = 10.0
    workers: list[WorkerSpec] = field(default_factory=lambda: [WorkerSpec()])
    knobs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    broker: str = "redis"
    #: "loop": one loop per producer process writes all its streams; "threads": one agent
    #: thread per stream (bench.agents.drive), as the seed-style baseline needs
    mode: str = "loop"
    sink: str = "ours"
    producers: int = 1
    #: seconds of py-spy sampling of the first worker during the writing (0: none)
    profile: float = 0.0
    #: seconds of Redis MONITOR during the writing (0: none)
    monitor: float = 0.0
    #: look at the finished streams' key TTLs
    ttls: bool = False
    #: hold every stream open once written (a steady state to weigh), then stop them
    hold: bool = False


@dataclass
class RunResult:
    """Everything one run measured."""

    spec: LoadSpec
    wall: float = 0.0  #: seconds from the first start() to the last StopResult
    streams: int = 0
    exact: int = 0
    all_sent: int = 0
    duplicates: int = 0
    lost: int = 0  #: replies whose text the chat does not show whole
    http_429: int = 0
    calls: int = 0
    call_rate: float = 0.0  #: platform calls/s during the writing
    first: list[float] = field(default_factory=list)  #: ms, start() -> first message
    final: list[float | None] = field(default_factory=list)  #: ms, stop() -> whole text shown
    gaps: list[float] = field(default_factory=list)  #: s between visible updates while writing
    #: s, per stream: its longest wait for the next update (start -> first, update -> update,
    #: last update -> stop)
    worst_gaps: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  #: CPU seconds per part
    worker_cpu_write: float = 0.0  #: worker CPU seconds during the writing window
    calls_write: int = 0  #: platform calls during the writing window
    write_window: float = 0.0
    redis_ops: float = 0.0  #: commands/s during the writing (INFO total_commands_processed)
    redis_ops_peak: float = 0.0  #: highest instantaneous_ops_per_sec seen
    redis_cmds: Counter = field(default_factory=Counter)  #: commandstats delta, writing
    mem_per_stream: float | None = None  #: bytes of used_memory per live stream
    mem_after: float | None = None  #: bytes per stream once all finished
    key_bytes: dict[str, float] = field(default_factory=dict)  #: MEMORY USAGE per key kind
    edits_before_firsts: int = 0  #: interim edits that went before the last first message
    passes: dict[str, float] = field(default_factory=dict)  #: worker metrics: passes by kind
    metrics: Counter = field(default_factory=Counter)  #: every worker counter (see metrics())
    silence: float = 0.0  #: longest time between two platform calls, s
    stop_spread: float = 0.0  #: s from the first stop() call to the last
    producer_late: float = 0.0  #: s, how far the slowest producer loop fell behind 50 ms ticks
    monitor: dict[str, float] = field(default_factory=dict)
    profile: str | None = None  #: path of py-spy's raw (collapsed) samples
    ttls: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def pct(self, values: list[float], q: float) -> float | None:
        return pct(values, q)

    @property
    def worker_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith("worker"))

    def share(self, part: str) -> float:
        """CPU of ``part`` (worker, sandbox, producer, redis) as % of one core over the run."""
        used = sum(v for k, v in self.cpu.items() if k.startswith(part))
        return 100 * used / self.wall if self.wall else 0.0

    @property
    def ms_per_call(self) -> float | None:
        """Worker CPU per platform call during the writing window, ms."""
        return 1000 * self.worker_cpu_write / self.calls_write if self.calls_write else None


# -- the run -------------------------------------------------------------------------------------
def amqp_reachable() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5672), 1):
        return True
    return False


def _delete_amqp_queue(queue: str) -> None:
    with contextlib.suppress(Exception):
        from kombu import Connection

        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.default_channel.queue_delete(queue)


def run_load(spec: LoadSpec, say: Callable[[str], None] = print) -> RunResult:
    """One load run from a clean slate; returns its figures (never raises for a bad outcome)."""
    from bench.agents import reply_text

    res = RunResult(spec)
    chars = int(spec.seconds * 60 * 4)
    base = 10_000_000 + (abs(hash(spec.label)) % 1000) * 10_000
    jobs = [(str(base + i), reply_text(chars, seed=i)) for i in range(spec.streams)]
    with contextlib.ExitStack() as stack:
        red = stack.enter_context(RedisServer())
        sandbox = SandboxProcess(spec.knobs)
        stack.callback(sandbox.stop)
        queue = f"load-{uuid.uuid4().hex[:8]}"
        env = {
            "TOKENRELAY_BROKER_URL": AMQP_URL if spec.broker == "amqp" else red.url,
            "TOKENRELAY_REDIS_URL": red.url,
            "TOKENRELAY_QUEUE": queue,
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": TOKEN,
            "TOKENRELAY_TELEGRAM_API_BASE": sandbox.base_url,
            **spec.env,
        }
        if spec.broker == "amqp":
            stack.callback(_delete_amqp_queue, queue)
        workers = [WorkerProc(w, env) for w in spec.workers] if spec.sink == "ours" else []
        for w in workers:
            stack.callback(w.stop)
        for w in workers:
            w.wait_ready()
        client = redis.Redis.from_url(red.url)
        stack.callback(client.close)
        redis_ps = psutil.Process(red._proc.pid)  # the bench owns this server
        sandbox_ps = psutil.Process(sandbox.pid)

        def cpu_now() -> dict[str, float]:
            parts = {f"worker{i}": w.cpu() for i, w in enumerate(workers)}
            for name, ps in (("sandbox", sandbox_ps), ("redis", redis_ps)):
                t = ps.cpu_times()
                parts[name] = t.user + t.system
            return parts

        n_prod = max(1, spec.producers)
        written = CTX.Barrier(n_prod + 1)
        go_stop = CTX.Event()
        out = CTX.Queue()
        start_at = time.monotonic() + 2.0 + 0.3 * n_prod
        pspec = {"mode": spec.mode, "sink": spec.sink, "hold": spec.hold}
        procs = [
            CTX.Process(target=producer_main, daemon=True,
                         args=(env, jobs[i::n_prod], pspec, start_at, written, go_stop, out))
            for i in range(n_prod)
        ]
        for p in procs:
            p.start()
        mem0 = float(redis_info(client)["used_memory"])
        cpu0 = cpu_now()
        time.sleep(max(0.0, start_at - time.monotonic()))
        t_first = time.monotonic()
        # the writing window: from 2 s after the start to 1 s before the end of the writing
        w_from, w_to = t_first + 2.0, t_first + spec.seconds - 0.5
        sampler = OpsSampler(client)
        time.sleep(max(0.0, w_from - time.monotonic()))
        cpu_a, info_a = cpu_now(), redis_info(client)
        profiler = None
        if spec.profile and workers:
            profiler = _py_spy(workers[0].proc.pid, spec.profile)
        if spec.monitor and workers:
            before = sum((w.passes() for w in workers), Counter())
            res.monitor = monitor_window(red.url, spec.monitor, [w.proc.pid for w in workers])
            after = sum((w.passes() for w in workers), Counter())
            res.monitor["passes"] = sum((after - before).values())
        time.sleep(max(0.0, w_to - time.monotonic()))
        cpu_b, info_b = cpu_now(), redis_info(client)
        sampler.close()
        res.write_window = w_to - w_from
        res.worker_cpu_write = sum(cpu_b[k] - cpu_a[k] for k in cpu_b if k.startswith("worker"))
        res.redis_ops = (info_b["total_commands_processed"] - info_a["total_commands_processed"]) \
            / res.write_window
        res.redis_ops_peak = sampler.peak
        res.redis_cmds = commandstats(info_b) - commandstats(info_a)
        say(f"    writing: worker CPU {100 * res.worker_cpu_write / res.write_window:.0f}% "
            f"of a core, Redis {res.redis_ops:,.0f} ops/s")
        if spec.hold:  # steady state: every stream open, its whole text in Redis
            written.wait(timeout=spec.seconds + 300)
            time.sleep(1.5)
            res.mem_per_stream = (float(redis_info(client)["used_memory"]) - mem0) / spec.streams
            res.key_bytes = key_bytes(client)
            go_stop.set()
        outs = [out.get(timeout=RESULT_TIMEOUT + 600) for _ in procs]
        t_end = time.monotonic()
        for p in procs:
            p.join(10)
        cpu1 = cpu_now()
        res.cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}
        res.cpu["producer"] = sum(o["cpu"] for o in outs)
        res.producer_late = max(o["late"] for o in outs)
        for w in workers:
            res.metrics += w.metrics()
            res.problems += w.problems()
        res.passes = {k.split(":", 1)[1]: v for k, v in res.metrics.items()
                      if k.startswith("passes:")}
        if profiler is not None:
            profiler.wait(spec.profile + 60)
            res.profile = profiler.args[-1] if isinstance(profiler.args, list) else None
        rows = [r for o in outs for r in o["rows"]]
        time.sleep(0.5)  # finals of streams whose stop() failed may still land
        chats, calls = sandbox.collect([r["chat"] for r in rows])
        if spec.ttls:
            res.ttls = ttls(client, [r["id"] for r in rows if r.get("id")][:50])
            res.mem_after = (float(redis_info(client)["used_memory"]) - mem0) / spec.streams
        res.problems += [r["error"] for r in rows if r.get("error")][:5]
        _judge(res, dict(jobs), rows, chats, calls, t_first, t_end, (w_from, w_to))
    return res


def _py_spy(pid: int, seconds: float) -> subprocess.Popen | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return None
    out = tempfile.mkstemp(prefix="tokenrelay-load-profile-", suffix=".txt")[1]
    # --gil: only the thread holding the GIL is sampled (blocked threads are not running Python)
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
           "--gil", "--format", "raw", "--output", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _judge(
    res: RunResult, texts: dict[str, str], rows: list[dict], chats: dict[str, list[Any]],
    calls: list[tuple], t_first: float, t_end: float, window: tuple[float, float],
) -> None:
    res.streams = len(rows)
    res.wall = t_end - t_first
    res.http_429 = sum(1 for _, status, _ in calls if status == 429)
    res.calls = len(calls)
    times = sorted(t for t, _, _ in calls)
    res.silence = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    stops = [r["t_stop"] for r in rows if "t_stop" in r]
    res.stop_spread = max(stops) - min(stops) if stops else 0.0
    res.calls_write = sum(1 for t, _, _ in calls if window[0] <= t < window[1])
    res.call_rate = res.calls_write / (window[1] - window[0])
    last_first = max((min(m[0] for m in ms) for ms in chats.values() if ms), default=0.0)
    res.edits_before_firsts = sum(1 for t, status, method in calls
                                  if status == 200 and method == "editMessageText"
                                  and t < last_first)
    for row in rows:
        msgs = chats.get(row["chat"], [])
        text = texts[row["chat"]]
        kept = [m for i, m in enumerate(msgs)
                if not any(squash(o[1]).startswith(squash(m[1])) for o in msgs[i + 1:])]
        shown = squash("".join(m[1] for m in kept))
        complete = shown == squash(text)
        res.exact += complete and len(kept) == len(msgs)
        res.duplicates += len(msgs) - len(kept)
        res.lost += not complete
        res.all_sent += bool(row.get("all_sent"))
        if msgs:
            res.first.append(1000 * (min(m[0] for m in msgs) - row["t_start"]))
        res.final.append(1000 * max(0.0, max(m[3] for m in kept) - row["t_stop"])
                         if complete and kept else None)
        times = sorted(t for m in msgs for t in m[2] if t <= row["t_stop"])
        gaps = [b - a for a, b in itertools.pairwise(times)]
        res.gaps += gaps
        waits = [row["t_start"], *times, row["t_stop"]]
        res.worst_gaps.append(max(b - a for a, b in itertools.pairwise(waits)))


def summary(res: RunResult) -> str:
    """One progress line for a finished run."""
    p = res.pct
    return (f"    {res.exact}/{res.streams} exact, {res.duplicates} doubled, 429s {res.http_429}, "
            f"gap p50 {_f(p(res.gaps, 50))} p99 {_f(p(res.gaps, 99))} s, first p50 "
            f"{_f(p(res.first, 50), 0)} ms, stop→final p50 {_f(p(res.final, 50), 0)} ms, "
            f"{res.call_rate:,.0f} calls/s, CPU worker {res.share('worker'):.0f}% sandbox "
            f"{res.share('sandbox'):.0f}% producer {res.share('producer'):.0f}% redis "
            f"{res.share('redis'):.0f}%, {res.wall:.0f} s, stop() spread {res.stop_spread:.2f} s, "
            f"longest silence {res.silence:.2f} s")


def _f(v: float | None, digits: int = 2) -> str:
    return "never" if v is None else f"{v:,.{digits}f}"


@contextlib.contextmanager
def quiet_env() -> Iterator[None]:
    """Nothing of the caller's TOKENRELAY_* environment leaks into a run."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("TOKENRELAY_")}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


def dump(results: list[RunResult], path: Path) -> None:
    """The raw figures of every run as JSON (percentiles, not samples)."""
    rows = []
    for r in results:
        rows.append({
            "label": r.spec.label, "streams": r.streams, "exact": r.exact, "lost": r.lost,
            "duplicates": r.duplicates, "http_429": r.http_429, "calls": r.calls,
            "call_rate": r.call_rate, "gap_p50": r.pct(r.gaps, 50), "gap_p99": r.pct(r.gaps, 99),
            "first_p50": r.pct(r.first, 50), "final_p50": r.pct(r.final, 50),
            "cpu": r.cpu, "wall": r.wall, "ms_per_call": r.ms_per_call,
            "redis_ops": r.redis_ops, "mem_per_stream": r.mem_per_stream,
            "producer_late": r.producer_late, "passes": r.passes, "monitor": r.monitor,
            "metrics": dict(r.metrics), "silence": r.silence, "stop_spread": r.stop_spread,
            "mem_after": r.mem_after, "key_bytes": r.key_bytes, "ttls": r.ttls,
        })
    path.write_text(json.dumps(rows, indent=1))
