"""Ten replies while the Bot API fails: 15% answered 5xx, 5% of connections dropped.

Two variants: drops before Telegram processed the call (the issue's setting), and drops after
it did (the client can't tell; a blind retry of a send shows the message twice).
"""

from __future__ import annotations

from bench.agents import Job, reply_text
from bench.compare import both_sides, scenario_table
from bench.harness import Rig
from bench.report import Table

NAME = "faults"
TITLE = "10 streams with 15% 5xx and 5% dropped connections"
#: emulator fault knobs per variant (seeded: both sides draw the same fault sequence)
VARIANTS = {
    "dropped before processing": {"error_rate": 0.15, "drop_rate": 0.05, "seed": 7},
    "dropped after processing": {"error_rate": 0.15, "drop_after_rate": 0.05, "seed": 7},
}


def run(rig: Rig) -> list[Table]:
    chars = rig.scale(1_200, 600)

    def jobs(r: Rig) -> list[Job]:
        return [Job(r.chat(), reply_text(chars, seed=300 + i)) for i in range(10)]

    tables = []
    for variant, knobs in VARIANTS.items():
        print(f" {variant}", flush=True)
        sides = both_sides(rig, jobs, **knobs)
        note = (
            f"10 replies of {chars:,} chars at 60 tokens/s, private chats; "
            f"emulator knobs {knobs}."
        )
        rows = ("duplicates", "final_p50", "final_max", "first_p50", "http_429", "calls")
        tables.append(scenario_table(f"{TITLE}: {variant}", sides, rows, note))
    return tables
