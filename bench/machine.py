"""Where and what was measured: the machine and the commit, for every benchmark's header."""

from __future__ import annotations

import os
import platform
import subprocess

from bench.harness import ROOT


def machine() -> str:
    """One line describing where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from tokenrelay.redis_server import find_redis_server

    redis = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=False
    ).stdout.split(" v=")[-1].split()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, redis-server {redis}"
    )


def revision() -> str:
    """The commit measured, read without touching the git index; "+ local changes" if dirty."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], capture_output=True,
                              text=True, check=False, cwd=ROOT).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + (" + local changes" if dirty else "")
