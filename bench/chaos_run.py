"""The long chaos run of issue 6: ``python -m bench.chaos_run [--minutes 2] [--streams 200]``.

Three worker processes, one killed with -9 and replaced every 3 s, 4% of platform calls stalled
4 s (longer than the 2.5 s lease), while ``--streams`` replies stream for about ``--minutes``.
Prints progress and the verdict line recorded in RELIABILITY.md. Needs nothing running: it
starts its own redis-server, sandbox and workers.
"""

from __future__ import annotations

import argparse
import time

from tests.chaos import run_chaos
from tokenrelay.redis_server import RedisServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos_run", description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=3.0)
    args = parser.parse_args(argv)
    tps = 20.0  # tokens/s per stream, 5 characters each
    chars = int(args.minutes * 60 * tps * 5)
    t0 = time.monotonic()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {line}", flush=True)

    with RedisServer() as redis:
        env = {"TOKENRELAY_BROKER_URL": redis.url, "TOKENRELAY_REDIS_URL": redis.url}
        report = run_chaos(env, streams=args.streams, chars=chars, workers=args.workers,
                           kill_every=args.kill_every, tokens_per_second=tps,
                           progress=progress)
    print(report.line())
    for line in report.details[:15]:
        print("stale:", line)
    for name in ("wrong", "duplicated", "stale_final", "failed"):
        values = getattr(report, name)
        if values:
            print(f"{name}: {values[:20]}")
    ok = (report.exact == report.streams and not report.stale_final and not report.failed
          and len(report.duplicated) <= report.ambiguous)
    good = "every chat exact, no stale final, every copy owned up to"
    print("verdict:", good if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
