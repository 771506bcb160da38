"""How much the delivery path slows the agent's own token loop: 10 streams, 100 ms API latency.

The model produces 60 tokens/s per stream; the agent hands each token to the sink as soon as it
can (a late loop catches up without sleeping, as with a buffered LLM stream). Two agent shapes:
one loop serving all 10 conversations (an asyncio bot, a single worker thread), and one thread
per conversation. We time the emit loop, the time blocked inside ``emit()``, and how late each
token is handed over compared with when the model produced it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.agents import Job, Reply, reply_text, tokens
from bench.compare import both_sides
from bench.harness import Rig, Sink
from bench.judge import pct
from bench.report import Table

NAME = "slowdown"
TITLE = "Agent token loop at 10 streams × 100 ms API latency"
RATE = 60.0
LATENCY = 0.1
STREAMS = 10
#: a loop that falls this many times behind the model's pace is cut off (bounds the run)
CAP = 3.0


@dataclass
class LoopStats:
    """What the agent loops of one side did."""

    walls: list[float] = field(default_factory=list)  #: seconds each loop took, start to end
    stalls: list[float] = field(default_factory=list)  #: seconds spent in each emit() call
    late: list[float] = field(default_factory=list)  #: seconds each token was handed over late


def agent_loop(sink: Sink, jobs: Sequence[Job], count: int, stats: LoopStats) -> list[Reply]:
    """One thread serving ``jobs``: token k of every stream is produced at k/RATE s.

    Stops early (with fewer tokens) if it falls CAP times behind the model's pace.
    """
    replies = [Reply(job, t_start=time.monotonic()) for job in jobs]
    streams = [sink.start(job.chat_id) for job in jobs]
    toks = [tokens(job.text)[:count] for job in jobs]
    t0 = time.monotonic()
    done = 0
    for k in range(count):
        if time.monotonic() > t0 + CAP * count / RATE:
            break
        produced = t0 + k / RATE
        wait = produced - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        for stream, tk in zip(streams, toks, strict=True):
            begin = time.monotonic()
            stats.late.append(begin - produced)
            stream.emit(tk[k])
            stats.stalls.append(time.monotonic() - begin)
        done = k + 1
    stats.walls.append(time.monotonic() - t0)
    for rep, tk in zip(replies, toks, strict=True):
        rep.job = Job(rep.job.chat_id, "".join(tk[:done]))
    _stop_all(streams, replies)
    return replies


def _stop_all(streams: Sequence[object], replies: Sequence[Reply]) -> None:
    """Stop every stream at once (stopping is not part of the measured loop)."""

    def stop(stream: object, rep: Reply) -> None:
        rep.t_stop = time.monotonic()
        rep.result = stream.stop()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=stop, args=p) for p in zip(streams, replies, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _run_shape(rig: Rig, one_loop: bool, count: int) -> Table:
    stats: dict[str, LoopStats] = {}

    def driver(sink: Sink, jobs: Sequence[Job]) -> list[Reply]:
        s = stats[sink.name] = LoopStats()
        groups = [list(jobs)] if one_loop else [[job] for job in jobs]
        out: list[list[Reply]] = [[] for _ in groups]

        def one(i: int) -> None:
            out[i] = agent_loop(sink, groups[i], count, s)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(groups))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [r for part in out for r in part]

    def jobs(r: Rig) -> list[Job]:
        return [Job(r.chat(), reply_text(count * 4, seed=400 + i)) for i in range(STREAMS)]

    sides = both_sides(rig, jobs, driver=driver, latency=LATENCY)
    ours, base = (stats[name] for name in sides)
    ideal = (count - 1) / RATE
    shape = "one agent loop, 10 streams" if one_loop else "10 agent threads, one stream each"
    table = Table(f"{TITLE}: {shape}", note=(
        f"{count} tokens per stream, produced at {RATE:g}/s (the loop's ideal time is "
        f"{ideal:.2f} s; a loop {CAP:g}× behind is cut off); every Bot API call takes "
        f"{LATENCY * 1000:g} ms. Lateness: when emit() was called for a token minus when the "
        "model produced it."
    ))
    table.add("emit loop wall time (s)", max(ours.walls), max(base.walls), "lower", "{:,.2f}")
    blocked = [sum(s.stalls) / len(s.walls) for s in (ours, base)]
    table.add("time blocked in emit() per loop (ms)", blocked[0] * 1e3, blocked[1] * 1e3,
              "lower", "{:,.1f}")
    share = [b / (sum(s.walls) / len(s.walls)) * 100 for b, s in zip(blocked, (ours, base),
                                                                      strict=True)]
    table.add("share of the loop's time blocked (%)", *share, "lower", "{:,.2f}")
    for label, q in (("token lateness p50 (ms)", 50), ("token lateness p99 (ms)", 99),
                     ("token lateness max (ms)", 100)):
        table.add(label, pct(ours.late, q) * 1e3, pct(base.late, q) * 1e3, "lower", "{:,.1f}")
    table.add("longest emit() call (ms)", max(ours.stalls) * 1e3, max(base.stalls) * 1e3,
              "lower", "{:,.1f}")
    exact = [sum(v.exact for v in side.verdicts) for side in sides.values()]
    table.add(f"replies complete and exact (of {STREAMS})", *exact, "higher")
    return table


def run(rig: Rig) -> list[Table]:
    count = int(rig.scale(6.0, 3.0) * RATE) + 1
    return [_run_shape(rig, one_loop, count) for one_loop in (True, False)]
