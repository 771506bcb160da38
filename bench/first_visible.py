"""First-visible latency: stream start -> first message in the chat (emulator ledger time).

Replies of 2 s at 60 tokens/s start every 0.2 s, each in its own private chat, so about ten are
live at once. The baseline's first message waits for its 1.0 s timer; tokenrelay's first flush
is enqueued with the first batch of tokens. Target: p50 < 150 ms on loopback.
"""

from __future__ import annotations

from bench.agents import Job, reply_text
from bench.compare import both_sides, scenario_table
from bench.harness import Rig
from bench.report import Table

NAME = "first_visible"
TITLE = "First-visible latency"
#: seconds between two stream starts
STAGGER = 0.2
#: characters per reply: 2 s of 60 tokens/s, 4 characters a token
CHARS = 480


def run(rig: Rig) -> list[Table]:
    n = rig.scale(60, 15)

    def jobs(r: Rig) -> list[Job]:
        return [Job(r.chat(), reply_text(CHARS, seed=i), delay=i * STAGGER) for i in range(n)]

    sides = both_sides(rig, jobs)
    note = (
        f"{n} replies of {CHARS} chars at 60 tokens/s, one private chat each, one starting every "
        f"{STAGGER:g} s. Latency is measured from the stream's start() call to the first "
        "message's arrival in the emulator."
    )
    rows = ("first_p50", "first_p99", "final_p50", "http_429", "calls")
    return [scenario_table(TITLE, sides, rows, note)]
