"""tokenrelay benchmarks: each module compares tokenrelay with a baseline in the same run.

``python -m bench`` runs them all (about 6 minutes on 2 cores), ``python -m bench --quick`` a
smaller version, ``python -m bench NAME …`` only the named ones. Results: BENCHMARKS.md.
"""

#: benchmark name -> module, in the order ``python -m bench`` runs them
BENCHMARKS: dict[str, str] = {
    "emit": "bench.emit_rate",
    "first_visible": "bench.first_visible",
    "concurrent": "bench.concurrent",
    "group": "bench.group_chat",
    "faults": "bench.faults",
    "slowdown": "bench.slowdown",
}
