"""Six replies streamed at once into one group chat (negative chat id, 20 messages/minute).

The baseline edits every stream each second, so the group's budget runs dry, 429s follow and
Telegram's penalty grows; tokenrelay shares one per-chat budget between its streams, skips
interim edits when it is spent and delivers every final.
"""

from __future__ import annotations

from bench.agents import Job, reply_text
from bench.compare import both_sides, scenario_table
from bench.harness import Rig
from bench.report import Table

NAME = "group"
TITLE = "6 streams in one group chat"


def run(rig: Rig) -> list[Table]:
    chars = rig.scale(1_200, 600)

    def jobs(r: Rig) -> list[Job]:
        group = r.chat(group=True)
        return [Job(group, reply_text(chars, seed=200 + i)) for i in range(6)]

    sides = both_sides(rig, jobs)
    note = (
        f"6 replies of {chars:,} chars at 60 tokens/s, all in one group chat; the emulator "
        "allows 20 messages/minute per group (burst 3). tokenrelay runs its production defaults "
        "(edits every 3 s in groups, 19/minute budget)."
    )
    rows = ("http_429", "duplicates", "first_p50", "first_p99", "final_p50", "final_max", "calls")
    return [scenario_table(TITLE, sides, rows, note)]
