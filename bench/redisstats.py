"""What a load run reads off Redis: INFO, command counts per second, MONITOR windows that
attribute commands to scripts, key sizes and TTLs."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
from collections import Counter
from typing import Any

import psutil
import redis

#: RabbitMQ on this machine (guest/guest); the horizontal section skips it when unreachable
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: tokens per chunk and seconds between chunks: 3 four-char tokens every 50 ms = 60 tokens/s
CHUNK, TICK = 3, 0.05
#: seconds a producer waits for all its StopResults
RESULT_TIMEOUT = 120.0
CTX = mp.get_context("spawn")



# -- Redis probes --------------------------------------------------------------------------------
def redis_info(client: redis.Redis) -> dict[str, Any]:
    return client.info("all")


def commandstats(info: dict[str, Any]) -> Counter:
    return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items()
                    if k.startswith("cmdstat_") and isinstance(v, dict)})


class OpsSampler:
    """Samples instantaneous_ops_per_sec every 0.5 s; keeps the peak."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(redis.RedisError):
                ops = float(self.client.info("stats")["instantaneous_ops_per_sec"])
                self.peak = max(self.peak, ops)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def monitor_window(url: str, seconds: float, worker_pids: list[int]) -> dict[str, float]:
    """Redis MONITOR for ``seconds``: commands sent by the workers' connections (round trips)
    and the commands their Lua scripts ran (MONITOR lists a script's commands right after its
    EVALSHA; scripts run atomically, so nothing comes in between)."""
    ports = {c.laddr.port for pid in worker_pids
             for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr}
    client = redis.Redis.from_url(url)
    top: Counter = Counter()
    lua_in_worker = lua_other = 0
    last_is_worker = False
    end = time.monotonic() + seconds
    with client.monitor() as mon:
        for cmd in mon.listen():
            if time.monotonic() > end:
                break
            if cmd.get("client_type") == "lua" or cmd.get("client_address") == "lua":
                if last_is_worker:
                    lua_in_worker += 1
                else:
                    lua_other += 1
                continue
            last_is_worker = int(cmd.get("client_port") or 0) in ports
            if last_is_worker:
                top[str(cmd.get("command", "")).split(" ", 1)[0].upper()] += 1
    client.close()
    return {"worker_round_trips": sum(top.values()), "worker_lua_cmds": lua_in_worker,
            "producer_lua_cmds": lua_other, **{f"rt_{k}": v for k, v in top.items()}}


def key_bytes(client: redis.Redis, sample: int = 50) -> dict[str, float]:
    """MEMORY USAGE per key kind, averaged over ``sample`` live streams."""
    ids = []
    for key in client.scan_iter(match="tr:{*}:text", count=1000):
        ids.append(key.decode()[4:-6])
        if len(ids) >= sample:
            break
    total: Counter = Counter()
    for sid in ids:
        for key in client.scan_iter(match=f"tr:{{{sid}}}:*", count=1000):
            total[key.decode().rsplit(":", 1)[1]] += client.memory_usage(key, samples=0) or 0
    return {k: v / len(ids) for k, v in total.items()} if ids else {}


def ttls(client: redis.Redis, ids: list[str]) -> dict[str, float]:
    """TTL of each key kind (meta, text, result, …) over finished streams: the longest seen."""
    seen: dict[str, float] = {}
    for sid in ids:
        for key in client.scan_iter(match=f"tr:{{{sid}}}:*", count=1000):
            kind = key.decode().rsplit(":", 1)[1]
            seen[kind] = max(seen.get(kind, -3.0), float(client.ttl(key)))
    return seen
