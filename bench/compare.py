"""Run one scenario on both sides (tokenrelay, then the baseline) and tabulate the verdicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.agents import Job, Reply, drive
from bench.harness import Rig, Sink
from bench.judge import Side, judge_side, totals
from bench.report import Table

#: standard rows: (totals key, label, better, format); "visible" and "exact" are handled apart
ROWS: dict[str, tuple[str, str, str]] = {
    "http_429": ("HTTP 429s", "lower", "{:,.0f}"),
    "duplicates": ("duplicate or stray messages", "lower", "{:,.0f}"),
    "calls": ("Bot API calls", "lower", "{:,.0f}"),
    "first_p50": ("first visible p50 (ms)", "lower", "{:,.0f}"),
    "first_p99": ("first visible p99 (ms)", "lower", "{:,.0f}"),
    "final_p50": ("stop → final visible p50 (ms)", "lower", "{:,.0f}"),
    "final_max": ("stop → final visible max (ms)", "lower", "{:,.0f}"),
}


Driver = Callable[[Sink, Sequence[Job]], list[Reply]]


def both_sides(
    rig: Rig, make_jobs: Callable[[Rig], Sequence[Job]], driver: Driver = drive, **knobs: Any
) -> dict[str, Side]:
    """The judged side per sink; ``make_jobs`` is called once per side (fresh chats for each).

    ``driver`` plays the agents (default: one thread per job); ``knobs`` configure the emulator.
    """
    out: dict[str, Side] = {}
    for sink in rig.sinks():
        try:
            with rig.side(**knobs) as emu:
                t0, cpu0 = time.monotonic(), rig.worker.cpu_seconds()
                replies = driver(sink, make_jobs(rig))
                out[sink.name] = side = judge_side(emu, replies)
                cpu = rig.worker.cpu_seconds() - cpu0
                print(f"  {sink.name}: {time.monotonic() - t0:.1f} s, {side.calls} Bot API calls,"
                      f" worker CPU {cpu:.2f} s", flush=True)
        finally:
            sink.close()
    return out


def scenario_table(
    title: str, sides: dict[str, Side], rows: Sequence[str], note: str = ""
) -> Table:
    """Completeness rows, then the chosen standard ``rows``, tokenrelay vs baseline."""
    ours, base = (totals(v) for v in sides.values())
    n = len(next(iter(sides.values())).verdicts)
    table = Table(title, note=note)
    table.add(f"replies complete and exact (of {n})", ours["exact"], base["exact"], "higher")
    table.add("chars visible at the end", ours["visible"], base["visible"], "higher")
    table.add("chars emitted", ours["emitted"], base["emitted"], None)
    for key in rows:
        label, better, fmt = ROWS[key]
        table.add(label, ours[key], base[key], better, fmt)  # type: ignore[arg-type]
    return table
