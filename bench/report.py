"""Comparison tables: one row per figure, tokenrelay vs the baseline, and how many times better."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Better = Literal["lower", "higher", None]


@dataclass(frozen=True)
class Row:
    metric: str
    ours: float | None
    base: float | None
    better: Better = "lower"
    fmt: str = "{:,.0f}"

    def cell(self, value: float | None) -> str:
        return "never" if value is None else self.fmt.format(value)

    def ratio(self) -> str:
        """How many times better tokenrelay is; "—" where that is undefined."""
        ours, base = self.ours, self.base
        if self.better is None or ours is None or base is None:
            return "—"
        good, bad = (base, ours) if self.better == "lower" else (ours, base)
        if bad == 0:
            return "—"
        return f"{good / bad:,.2f}×" if good / bad < 10 else f"{good / bad:,.0f}×"


@dataclass
class Table:
    """A markdown table; ``note`` is printed under it (what the scenario did)."""

    title: str
    baseline: str = "seed baseline"
    note: str = ""
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        metric: str,
        ours: float | None,
        base: float | None,
        better: Better = "lower",
        fmt: str = "{:,.0f}",
    ) -> None:
        self.rows.append(Row(metric, ours, base, better, fmt))

    def render(self) -> str:
        head = ["metric", "tokenrelay", self.baseline, "× better"]
        body = [[r.metric, r.cell(r.ours), r.cell(r.base), r.ratio()] for r in self.rows]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "| " + " | ".join([first, *rest]) + " |"

        rule = "|" + "|".join(["-" * (widths[0] + 2)] + [
            "-" * (w + 1) + ":" for w in widths[1:]
        ]) + "|"
        lines = [f"### {self.title}", "", line(head), rule, *(line(b) for b in body)]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"


def grid(title: str, head: list[str], rows: list[list[str]], note: str = "") -> str:
    """A markdown table of strings, first column left-aligned."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(
            [cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:],
                                                                       strict=True))]
        ) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]])
    out = [f"### {title}", "", line(head), rule + "|", *(line(r) for r in rows)]
    return "\n".join(out + (["", note] if note else [])) + "\n"
