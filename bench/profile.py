"""py-spy profiles of a worker, grouped by what the time is spent on (bench load's cpu
section)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.loadrig import RunResult
from bench.report import grid

#: frames every stack of a flush thread passes through: not a cost of their own
_WRAPPERS = ("threading.py", "concurrent/futures", "FlushEngine._guarded", "FlushEngine._run",
             "runpy>", "click/", "celery/bin", "celery/__main__", "bootsteps.py")


def profile_tables(path: Path, r: RunResult) -> list[str]:
    """py-spy's raw samples (GIL holder only) grouped by what the time is spent on."""
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text().splitlines():
        head, _, count = line.rpartition(" ")
        if head and count.isdigit():
            stacks.append((head.split(";"), int(count)))
    total = sum(c for _, c in stacks) or 1
    self_cat: Counter = Counter()
    incl: Counter = Counter()
    leaves: Counter = Counter()
    ours: Counter = Counter()
    for frames, c in stacks:
        leaf = frames[-1]
        self_cat[_category(leaf)] += c
        leaves[leaf] += c
        for cat in {_category(f) for f in frames if not any(w in f for w in _WRAPPERS)}:
            incl[cat] += c
        for f in {f for f in frames if "(workers/" in f}:
            ours[f] += c
    ms = r.ms_per_call or 0.0

    def rows(counter: Counter, k: int) -> list[list[str]]:
        return [[name, f"{100 * v / total:.1f}%", f"{ms * v / total:.2f}"]
                for name, v in counter.most_common(k)]

    head = ["where", "share of worker Python time", "≈ ms per call"]
    note = (f"py-spy --gil at 250 Hz on the worker process for the writing window "
            f"({total:,} samples of the thread holding the GIL); ≈ ms per call = share × "
            f"{ms:.2f} ms (this run's CPU per call, profiler overhead included). Self: the "
            "innermost frame's category. Inclusive: samples with the category anywhere on "
            "the stack.")
    return [
        grid("Profile: self time by category", head, rows(self_cat, 12), note),
        grid("Profile: inclusive time by category", head, rows(incl, 14)),
        grid("Profile: hottest innermost frames", head, rows(leaves, 15)),
        grid("Profile: tokenrelay frames (inclusive)", head, rows(ours, 20)),
    ]


def _category(frame: str) -> str:
    for needle, name in _CATEGORIES:
        if needle in frame:
            return name
    return "other: " + frame.split(" (", 1)[-1].split(":", 1)[0]


#: (substring of a py-spy frame, category); the first match wins
_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("(workers/engine.py", "engine loop (claim, settle)"),
    ("(workers/metrics.py", "metrics (prometheus)"),
    ("prometheus_client/", "metrics (prometheus)"),
    ("(tokenrelay/store/", "store (Redis calls, snapshot decode)"),
    ("(workers/lease.py", "leases (renewals)"),
    ("(workers/ratelimit.py", "rate budgets"),
    ("(workers/planner/", "planner (delivery.py, split.py)"),
    ("(workers/channels/", "channel clients (Telegram, http.py)"),
    ("(workers/", "other tokenrelay worker code"),
    ("(tokenrelay/", "other tokenrelay worker code"),
    ("redis/", "redis-py (round trips)"),
    ("json/", "JSON"),
    ("requests/", "requests / urllib3 / http.client"),
    ("urllib3/", "requests / urllib3 / http.client"),
    ("http/client.py", "requests / urllib3 / http.client"),
    ("email/", "requests / urllib3 / http.client"),
    ("tenacity/", "tenacity"),
    ("socket.py", "sockets"),
    ("ssl.py", "sockets"),
    ("selectors.py", "sockets"),
    ("logging/", "logging"),
    ("celery/", "Celery / kombu"),
    ("kombu/", "Celery / kombu"),
    ("billiard/", "Celery / kombu"),
    ("threading.py", "threads, locks, queues"),
    ("queue.py", "threads, locks, queues"),
    ("concurrent/futures", "threads, locks, queues"),
    ("uuid.py", "uuid"),
    ("hashlib", "hashing"),
)
