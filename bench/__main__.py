"""``python -m bench [--quick] [NAME ...]``: run benchmarks and print their tables (markdown).

``python -m bench load [--quick] [--only SECTION ...]``: the production-load runs (bench/load.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

from bench import BENCHMARKS
from bench.machine import machine, revision


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load"]:
        from bench.load import main as load_main

        return load_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smaller, shorter scenarios")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from bench.harness import rig

    names = args.names or list(BENCHMARKS)
    print(f"# python -m bench {' '.join(sys.argv[1:])}".rstrip())
    print(f"machine: {machine()}")
    print(f"tokenrelay: commit {revision()}\n", flush=True)
    started = time.monotonic()
    with rig(quick=args.quick) as r:
        for name in names:
            module = importlib.import_module(BENCHMARKS[name])
            t0 = time.monotonic()
            print(f"## {name}: {module.TITLE}", flush=True)
            for table in module.run(r):
                print("\n" + table.render(), flush=True)
            print(f"({name} took {time.monotonic() - t0:.0f} s)\n", flush=True)
    print(f"total: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
