"""Redis Cluster readiness: every Lua call touches keys of one hash slot.

Every script call and pipelined script call of a real run (producer, flush engine, stop task,
watchdog, rate budgets, schedules, take) is recorded with its KEYS, and each call's keys must
map to one Cluster slot (CRC16 of the hash tag).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from tokenrelay.store import Store
from tokenrelay.store.scripts import LUA_DIR

pytestmark = pytest.mark.integration


def _record(store: Store, calls: list[tuple[str, list[str]]], lock: threading.Lock) -> None:
    run, pipelined = store._run, store._pipelined

    def recording_run(name, keys, args):  # type: ignore[no-untyped-def]
        with lock:
            calls.append((name, list(keys)))
        return run(name, keys, args)

    def recording_pipelined(batch):  # type: ignore[no-untyped-def]
        with lock:
            calls.extend((name, list(keys)) for name, keys, _ in batch)
        return pipelined(batch)

    store._run = recording_run  # type: ignore[method-assign]
    store._pipelined = recording_pipelined  # type: ignore[method-assign]


@pytest.fixture
def recorded(producer, worker) -> Iterator[list[tuple[str, list[str]]]]:
    from workers import runtime

    calls: list[tuple[str, list[str]]] = []
    lock = threading.Lock()
    worker_store = runtime.flusher().store
    saved = [(s, s._run, s._pipelined) for s in (producer.store, worker_store)]
    for store in {id(s): s for s in (producer.store, worker_store)}.values():
        _record(store, calls, lock)
    yield calls
    for store, run, pipelined in saved:
        store._run, store._pipelined = run, pipelined  # type: ignore[method-assign]


def test_every_script_call_touches_one_slot(recorded, producer, telegram) -> None:
    streams = [producer.start(channel="telegram", chat_id=str(61_000 + i)) for i in range(3)]
    for i, stream in enumerate(streams):
        stream.emit(f"reply {i} " * 50)
        stream.tool_message("🔧 tool")
        stream.emit("and the rest")
    for i in range(len(streams)):  # interim passes of the flush engine ran
        assert telegram.wait_for(lambda e, c=str(61_000 + i): e.texts(c), timeout=10)
    streams[0].take()
    for stream in streams:
        assert stream.stop(timeout=20).all_sent
    # the engine settles the last claims on its next round: wait until the schedule is empty
    deadline = time.monotonic() + 10
    while producer.store.schedule_sizes()["due"] and time.monotonic() < deadline:
        time.sleep(0.02)
    names = {name for name, _ in recorded}
    # the run exercised the scripts of every step of a stream's life
    assert {"create", "push", "begin", "rate_take", "end", "finish", "claim", "release",
            "take"} - names == set(), names
    for name, keys in recorded:
        slots = {key_slot(k.encode()) for k in keys}
        assert len(slots) <= 1, f"{name} touches {len(slots)} slots: {keys}"


def test_every_script_names_its_keys() -> None:
    """Each script opens with named locals for its KEYS (a reader never decodes KEYS[3])."""
    for path in LUA_DIR.glob("*.lua"):
        if path.stem.startswith("_"):
            continue
        body = path.read_text()
        uses = body.count("KEYS[")
        if uses:
            first_code = next(
                line for line in body.splitlines() if line.strip() and not line.startswith("--")
            )
            assert first_code.startswith("local") and "KEYS[1]" in first_code, path.name
