"""The emulator's settings: every knob ``configure`` can change, and how each is read from text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.loopback import FaultKnobs

__all__ = ["KNOB_PARSERS", "LIMIT_KNOBS", "Knobs"]


@dataclass(frozen=True)
class Knobs(FaultKnobs):
    """Every setting of the emulator that ``configure`` can change at runtime (the fault
    knobs of ``FaultKnobs`` included)."""

    token: str | None = None  #: the only bot token accepted; None accepts any well-formed token
    private_rate: float = 1.0  #: messages per second per private chat
    private_burst: int = 3  #: bucket size per private chat
    group_per_minute: float = 20.0  #: messages per minute per group chat
    group_burst: int = 3  #: bucket size per group chat
    global_rate: float = 30.0  #: messages per second per bot
    global_burst: int = 30  #: bucket size per bot
    max_units: int = 4096  #: text limit in UTF-16 code units of visible text

    def validated(self) -> Knobs:
        super().validated()
        for name in ("private_rate", "group_per_minute", "global_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("private_burst", "group_burst", "global_burst", "max_units"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        return self


#: knobs whose change resets the flood state
LIMIT_KNOBS = frozenset(
    {
        "private_rate",
        "private_burst",
        "group_per_minute",
        "group_burst",
        "global_rate",
        "global_burst",
    }
)


def _optional(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value in (None, "", "none", "None") else parse(value)


#: how a knob's value is read from a command line or a form
KNOB_PARSERS: dict[str, Callable[[Any], Any]] = {
    "token": _optional(str),
    "seed": _optional(int),
    "private_burst": int,
    "group_burst": int,
    "global_burst": int,
    "max_units": int,
    **dict.fromkeys(
        [
            "latency",
            "error_rate",
            "drop_rate",
            "drop_after_rate",
            "private_rate",
            "group_per_minute",
            "global_rate",
        ],
        float,
    ),
}
