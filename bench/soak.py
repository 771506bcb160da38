"""The soak of issue 6: ``python -m bench.soak [--minutes 20] [--streams 200]``.

Keeps ``--streams`` replies streaming at all times for ``--minutes`` (each stream writes for
about 30 s at 20 tokens/s, stops, and a new one takes its place) through one bare worker
process, and samples every 30 s: the worker's memory (RSS), Redis's memory and key count, and
the p99 gap between edits of the streams that finished in that window. Finished streams keep
their keys for TOKENRELAY_RESULT_TTL (60 s here), so the key count must come back to its
baseline after the run. Writes a PNG plot next to the printed table.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import uuid
from pathlib import Path

import psutil
import redis as redis_lib

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.chaos import TOKEN
from tests.procs import WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.redis_server import RedisServer

OUT = Path(__file__).with_name("results")
STREAM_SECONDS = 30.0
TPS = 20.0


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    with RedisServer() as server, TelegramEmulator(
        token=TOKEN, global_rate=1e6, global_burst=10**6, private_rate=2.0, private_burst=4
    ) as sandbox:
        queue = f"soak-{uuid.uuid4().hex[:6]}"
        env = {
            "TOKENRELAY_BROKER_URL": server.url, "TOKENRELAY_REDIS_URL": server.url,
            "TOKENRELAY_QUEUE": queue, "TOKENRELAY_TELEGRAM_BOT_TOKEN": TOKEN,
            "TOKENRELAY_TELEGRAM_API_BASE": sandbox.base_url,
            "TOKENRELAY_TELEGRAM_GLOBAL_RATE": "100000", "TOKENRELAY_RESULT_TTL": "60",
        }
        worker = WorkerProcess(env, queue, "soak")
        assert worker.ready.wait(60), "".join(worker.lines[-20:])
        producer = StreamProducer(Settings.from_env(env))
        r = redis_lib.Redis.from_url(server.url)
        proc = psutil.Process(worker.pid)
        baseline_keys = r.dbsize()
        chats = itertools.count(1_000_000)
        live: list[tuple[float, str, object]] = []
        finished: list[tuple[float, str, float]] = []  # (finish time, chat, started)
        samples: list[dict[str, float]] = []
        next_sample = t0
        end = t0 + args.minutes * 60
        tick = 0
        try:
            while time.monotonic() < end or live:
                now = time.monotonic()
                # keep --streams streaming, starts spread over the first STREAM_SECONDS
                while now < end and len(live) < args.streams and (
                    len(live) < args.streams * min(1.0, (now - t0) / STREAM_SECONDS + 0.05)
                ):
                    chat = str(next(chats))
                    live.append((now, chat, producer.start(channel="telegram", chat_id=chat)))
                for started, chat, stream in list(live):
                    if now - started >= STREAM_SECONDS or now >= end:
                        stream.stop(wait=False)
                        live.remove((started, chat, stream))
                        finished.append((now, chat, started))
                    else:
                        stream.emit(f"t{tick} ")
                tick += 1
                if now >= next_sample:
                    window = [c for f, c, _ in finished if f > now - 30]
                    gaps: list[float] = []
                    for chat in window[-100:]:
                        for message in sandbox.messages(chat):
                            times = [t for t, _ in message.history]
                            gaps += [b - a for a, b in itertools.pairwise(times)]
                    info = r.info("memory")
                    samples.append({
                        "minute": (now - t0) / 60, "worker_rss_mb": proc.memory_info().rss / 2**20,
                        "redis_mb": info["used_memory"] / 2**20, "keys": r.dbsize(),
                        "gap_p99_s": _p99(gaps), "live": len(live),
                    })
                    s = samples[-1]
                    print(f"[{s['minute']:5.1f} min] live {s['live']:4.0f}  worker "
                          f"{s['worker_rss_mb']:6.1f} MB  redis {s['redis_mb']:6.2f} MB  keys "
                          f"{s['keys']:6.0f}  gap p99 {s['gap_p99_s']:.2f} s", flush=True)
                    next_sample = now + 30
                time.sleep(max(0.0, 1.0 / TPS - (time.monotonic() - now)))
            settle_until = time.monotonic() + 90  # results expire after 60 s
            while time.monotonic() < settle_until and r.dbsize() > baseline_keys + 2:
                time.sleep(1)
            after = r.dbsize()
        finally:
            producer.close()
            worker.stop()
    lost = [c for _, c, _ in finished if not sandbox.texts(c)]
    print(f"{len(finished)} streams in {args.minutes:g} min; keys: baseline {baseline_keys}, "
          f"after {after}; streams with nothing shown: {len(lost)}")
    _plot(samples, OUT / "soak.png")
    return 0


def _plot(samples: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    minutes = [s["minute"] for s in samples]
    for ax, key, label in zip(axes, ("worker_rss_mb", "redis_mb", "keys", "gap_p99_s"), (
        "worker RSS (MB)", "Redis used memory (MB)", "Redis keys", "p99 gap between edits (s)"
    ), strict=True):
        ax.plot(minutes, [s[key] for s in samples], marker=".")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes")
    fig.suptitle("tokenrelay soak: 200 steady streams, one worker process")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    median = statistics.median(s["gap_p99_s"] for s in samples)
    print(f"plot: {path}  (median gap p99 {median:.2f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
