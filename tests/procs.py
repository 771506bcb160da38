"""Celery workers as real subprocesses (for crash and multi-worker tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from tokenrelay.processes import stop_process

ROOT = Path(__file__).resolve().parents[1]


class WorkerProcess:
    """``celery -A workers worker`` in a subprocess; ``ready`` is set when it consumes.

    No pool or concurrency flags: the defaults in celeryconfig.py must do the right thing.
    """

    def __init__(self, env: dict[str, str], queue: str, name: str) -> None:
        self.ready = threading.Event()
        self.lines: list[str] = []
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queue,
            # a unique node name: another run on the same broker must not share its pidbox
            "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO",
            "--without-mingle", "--without-gossip",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
