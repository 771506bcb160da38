"""21 concurrent replies at 60 tokens/s, one of them 9,000 characters long (over Telegram's 4096).

Every reply has its own private chat; all start together. The long reply shows whether the
sender splits at a boundary and keeps going, or gets stuck at the limit.
"""

from __future__ import annotations

from bench.agents import Job, reply_text
from bench.compare import both_sides, scenario_table
from bench.harness import Rig
from bench.report import Table

NAME = "concurrent"
TITLE = "21 concurrent streams, one 9,000 chars"


def run(rig: Rig) -> list[Table]:
    short, long_chars = rig.scale(1_500, 800), rig.scale(9_000, 6_000)

    def jobs(r: Rig) -> list[Job]:
        shorts = [Job(r.chat(), reply_text(short, seed=i)) for i in range(20)]
        return [*shorts, Job(r.chat(), reply_text(long_chars, seed=99))]

    sides = both_sides(rig, jobs)
    note = (
        f"20 replies of {short:,} chars and one of {long_chars:,} chars (a few emoji, paragraphs), "
        "4-char tokens at 60 tokens/s each, 21 private chats, emulator with Telegram's limits "
        "(1 msg/s per chat, burst 3; 30/s per bot)."
    )
    title = f"21 concurrent streams, one {long_chars:,} chars"
    table = scenario_table(title, sides, ("http_429", "duplicates", "first_p50", "first_p99",
                                          "final_p50", "final_max", "calls"), note)
    ours, base = (s.verdicts[-1] for s in sides.values())
    table.add(f"{long_chars:,}-char reply: chars visible", ours.visible, base.visible, "higher")
    table.add(f"{long_chars:,}-char reply: messages", ours.messages, base.messages, None)
    return [table]
