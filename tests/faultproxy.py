"""A loopback TCP proxy that injects faults between a client and a server (Redis, a platform).

Faults act on what the client sends, chunk by chunk (one request or one pipeline each):

- ``stall_rate`` / ``stall``: hold the chunk for ``stall`` seconds before forwarding it, so the
  server acts late (a platform that answers after the client's timeout);
- ``drop_after_rate``: forward the chunk, then cut the connection before the answer comes back
  (the server acted; the client never learns it).

Every decision comes from one seeded RNG; ``counts`` says how many faults were injected.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import threading
import time
from collections import Counter


class FaultProxy:
    """``with FaultProxy(("127.0.0.1", port)) as proxy:`` listens on ``proxy.port``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        stall_rate: float = 0.0,
        stall: float = 0.0,
        drop_after_rate: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.upstream = upstream
        self.stall_rate = stall_rate
        self.stall = stall
        self.drop_after_rate = drop_after_rate
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()

    def configure(self, **knobs: float) -> None:
        with self._lock:
            for name, value in knobs.items():
                setattr(self, name, value)

    def _draw(self) -> str | None:
        with self._lock:
            if self._rng.random() < self.stall_rate:
                self.counts["stall"] += 1
                return "stall"
            if self._rng.random() < self.drop_after_rate:
                self.counts["drop_after"] += 1
                return "drop_after"
        return None

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        try:
            while not self._closed:
                ready, _, _ = select.select([client, server], [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        fault = self._draw()
                        if fault == "stall":
                            time.sleep(self.stall)
                        server.sendall(data)
                        if fault == "drop_after":
                            time.sleep(0.05)  # let the server act on it, then cut the line
                            return
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
