"""The chaos harness: worker processes killed with -9 and replaced while streams run, and platform
calls stalled longer than the lease, judged from the sandbox's ledger.

Used by tests/test_chaos.py (CI size) and ``python -m bench chaos`` (minutes, recorded in
RELIABILITY.md).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.faultproxy import FaultProxy
from tests.helpers import squash
from tests.procs import WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.results import StopResult

TOKEN = "123456:TEST-sandbox-token_abcdefghijklmnopqrstuvwxyz"


@dataclass
class ChaosReport:
    streams: int = 0
    kills: int = 0
    stalls: int = 0
    exact: int = 0
    #: chats showing more messages than the result names
    duplicated: list[str] = field(default_factory=list)
    #: copies the results own up to (sends whose answer was lost)
    ambiguous: int = 0
    #: messages whose final text is not their newest (an older edit landed last)
    stale_final: list[str] = field(default_factory=list)
    #: edits that made a message shorter than it was (an older text landed after a newer)
    backwards: int = 0
    wrong: list[str] = field(default_factory=list)
    #: the last texts (time before the last one: length) of each stale message
    details: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.streams} streams, {self.kills} kill -9, {self.stalls} stalls: "
                f"{self.exact} exact, {len(self.duplicated)} with a copy "
                f"({self.ambiguous} sends owned up to as ambiguous), {len(self.stale_final)} "
                f"stale finals, {self.backwards} backward moves mid-stream, "
                f"{len(self.failed)} failed, {self.seconds:.0f} s")


def run_chaos(
    env: dict[str, str],
    *,
    streams: int = 30,
    chars: int = 3000,
    workers: int = 3,
    kill_every: float = 3.0,
    stall_rate: float = 0.04,
    stall: float = 4.0,
    tokens_per_second: float = 60.0,
    progress: Callable[[str], None] | None = None,
    seed: int = 5,
) -> ChaosReport:
    """Stream ``streams`` replies of ``chars`` characters through ``workers`` worker processes
    while one is killed with -9 and replaced every ``kill_every`` s, and ``stall_rate`` of the
    platform calls are held ``stall`` s before the platform sees them."""
    rng = random.Random(seed)
    report = ChaosReport(streams=streams)
    with TelegramEmulator(token=TOKEN, global_rate=1e6, global_burst=10**6, private_rate=2.0,
                          private_burst=4) as sandbox, FaultProxy(
        ("127.0.0.1", sandbox.port), stall_rate=stall_rate, stall=stall, seed=seed
    ) as proxy:
        queue = f"tokenrelay-chaos-{uuid.uuid4().hex[:8]}"
        env = {
            **env,
            "TOKENRELAY_QUEUE": queue,
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": TOKEN,
            "TOKENRELAY_TELEGRAM_API_BASE": f"http://127.0.0.1:{proxy.port}",
            "TOKENRELAY_TELEGRAM_CHAT_RATE": "1.0",
            "TOKENRELAY_TELEGRAM_GLOBAL_RATE": "100000",
            "TOKENRELAY_FLUSH_INTERVAL": "1.0",
            "TOKENRELAY_HTTP_TIMEOUT": "10",
        }
        fleet = [WorkerProcess(env, queue, f"chaos{i}") for i in range(workers)]
        for w in fleet:
            assert w.ready.wait(60), "".join(w.lines[-20:])
        producer = StreamProducer(Settings.from_env(env))
        stop_killing = threading.Event()

        def killer() -> None:
            n = workers
            while not stop_killing.wait(kill_every):
                victim = rng.choice([w for w in fleet if w.proc.poll() is None])
                victim.kill()
                report.kills += 1
                fleet.remove(victim)
                n += 1
                fleet.append(WorkerProcess(env, queue, f"chaos{n}"))
                if progress:
                    progress(f"kill -9 #{report.kills} (pid {victim.pid}), replaced")

        t0 = time.monotonic()
        texts = {
            str(300_000 + i): " ".join(f"s{i}w{j}" for j in range(chars // 7))[:chars]
            for i in range(streams)
        }
        chats = list(texts)
        live = [producer.start(channel="telegram", chat_id=c) for c in chats]
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        try:
            step = 5  # characters per token
            gap = step / (tokens_per_second * 5)
            longest = max(len(t) for t in texts.values())
            for k in range(0, longest, step):
                for stream, chat in zip(live, chats, strict=True):
                    piece = texts[chat][k : k + step]
                    if piece:
                        stream.emit(piece)
                time.sleep(gap)
            handles = [s.stop(wait=False) for s in live]
            results: list[StopResult | None] = []
            for handle in handles:
                try:
                    results.append(handle.result(timeout=180))
                except Exception as exc:
                    report.failed.append(f"{handle.stream_id}: {exc}")
                    results.append(None)
        finally:
            stop_killing.set()
            kill_thread.join()
            producer.close()
            for w in fleet:
                w.stop()
        report.stalls = proxy.counts["stall"]
        report.seconds = time.monotonic() - t0
        for chat, result in zip(chats, results, strict=True):
            _judge(report, sandbox, chat, texts[chat], result)
    return report


def _judge(
    report: ChaosReport, sandbox: TelegramEmulator, chat: str, text: str,
    result: StopResult | None,
) -> None:
    messages = sandbox.messages(chat)
    shown = "".join(m.text for m in messages)
    if result is not None:
        report.ambiguous += result.ambiguous_sends
        if len(messages) > len(result.message_ids):
            report.duplicated.append(chat)
        if not result.all_sent:
            report.failed.append(f"{chat}: {result.error}")
    ids = set(result.message_ids) if result else set()
    carried = "".join(m.text for m in messages if str(m.message_id) in ids)
    if squash(carried) == squash(text):
        report.exact += 1
    elif squash(shown) != squash(text):
        report.wrong.append(chat)
    for message in messages:
        history = [t for _, t in message.history]
        if history and len(history[-1]) < max(len(t) for t in history):
            report.stale_final.append(f"{chat}#{message.message_id}")
            t_end = message.history[-1][0]
            report.details.append(
                f"{chat}#{message.message_id}: " + " ".join(
                    f"{t - t_end:+.1f}s:{len(x)}" for t, x in message.history[-6:]
                ) + (f" | result: takeovers={result.takeovers} retries={result.retries} "
                     f"edits={result.edits} how={result.how}" if result else "")
            )
        report.backwards += sum(
            1 for before, after in itertools.pairwise(history)
            if len(after) < len(before)
        )
