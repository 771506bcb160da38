"""``tokenrelay status`` and ``tokenrelay inspect``: what a deployment's streams are doing, read
from Redis (read-only, through ``tokenrelay.store.Store``) and shown as rich tables, or as JSON.

Every time shown is on the Redis server's clock, so hosts with skewed clocks agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console
from rich.table import Table

from tokenrelay.config import ConfigError, Settings, redact_url
from tokenrelay.store import Schedules, SentState, Store, StreamNotFound

#: exit codes: the stream is unknown; Redis or the settings are unusable
NOT_FOUND, UNREACHABLE = 1, 2


def open_store(settings: Settings) -> Store:
    """A Store for reading, that fails within seconds instead of retrying when Redis is down."""
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=3, socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )
    return Store(client, Schedules(settings.queue, settings.shards))


def guarded(body: Callable[[Settings, Console], int], err: Console) -> int:
    """Run ``body`` with the environment's settings; a Redis or settings error becomes one line
    on ``err`` (the URL without its password) and exit code 2."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        err.print(f"tokenrelay: {exc}", markup=False, highlight=False)
        return UNREACHABLE
    try:
        return body(settings, Console())
    except (redis.exceptions.RedisError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        password = redis.connection.parse_url(settings.redis_url).get("password")
        if password:
            reason = reason.replace(password, "***")
        err.print(
            f"tokenrelay: cannot read Redis at {redact_url(settings.redis_url)} ({reason})",
            markup=False, highlight=False, soft_wrap=True,
        )
        return UNREACHABLE


# status ----------------------------------------------------------------------------------------
def messages_of(state: SentState) -> int:
    return sum(1 for s in state.segments if s.message_id is not None)


def lag_ms(view: dict[str, Any], now_ms: int) -> int:
    """How long the chat has been behind: 0 when it shows all the text, else the time since the
    last pass that showed text (since the start when none did yet)."""
    if view["text_b"] <= int(view["sent"].get("delivered_b") or 0):
        return 0
    since = view["sent"].get("flushed_at_ms") or view["meta"].get("created_ms") or now_ms
    return max(0, now_ms - int(since))


def state_of(view: dict[str, Any], now_ms: int) -> str:
    """The stream's status and what it waits for: ``open, flushing``, ``closing, due``, …"""
    if view["lease"]:
        doing = "flushing"
    elif int(view["sent"].get("ticket_ms") or 0) > now_ms:
        doing = "waiting for a budget"
    elif view["due_ms"] is not None:
        doing = "due" if view["due_ms"] <= now_ms else "scheduled"
    else:
        doing = "idle"
    return f"{view['meta'].get('status', '?')}, {doing}"


def holder_of(token: str | None) -> str:
    """``host:pid`` of a lease's owner token (its random part dropped), or an empty string."""
    return token.rsplit(":", 1)[0] if token else ""


def row_of(view: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """One live stream as ``tokenrelay status`` shows it (ages in seconds)."""
    meta = view["meta"]
    return {
        "stream_id": view["id"],
        "channel": meta.get("channel", ""),
        "chat_id": meta.get("chat_id", ""),
        "age_s": round((now_ms - int(meta.get("created_ms") or now_ms)) / 1000, 1),
        "chars": view["chars"],
        "messages": messages_of(view["state"]),
        "lag_s": round(lag_ms(view, now_ms) / 1000, 1),
        "holder": holder_of(view["lease"]),
        "state": state_of(view, now_ms),
    }


def status(settings: Settings, console: Console, limit: int, as_json: bool) -> int:
    """Print the live streams (oldest first) and their totals."""
    store = open_store(settings)
    now, views = store.live_streams(limit)
    sizes = store.schedule_sizes()
    rows = sorted((row_of(v, now) for v in views), key=lambda r: -r["age_s"])
    totals = {
        "streams": len(rows),
        "open": sum(1 for v in views if v["meta"].get("status") == "open"),
        "closing": sum(1 for v in views if v["meta"].get("status") == "closing"),
        "flushing": sum(1 for r in rows if r["holder"]),
        "chars": sum(r["chars"] for r in rows),
        "messages": sum(r["messages"] for r in rows),
        "due": sizes["due"],
        "watched": sizes["watch"],
        "limited_to": limit,
    }
    if as_json:
        console.print_json(json.dumps({"streams": rows, "totals": totals}))
        return 0
    table = Table(title=f"live streams of queue {settings.queue!r}")
    for name, justify in (("stream", "left"), ("channel", "left"), ("chat", "left"),
                          ("age", "right"), ("chars", "right"), ("messages", "right"),
                          ("lag", "right"), ("lease holder", "left"), ("state", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["stream_id"], r["channel"], r["chat_id"], f"{r['age_s']:g} s",
                      str(r["chars"]), str(r["messages"]), f"{r['lag_s']:g} s", r["holder"],
                      r["state"])
    console.print(table)
    more = " (the limit: more may exist)" if len(rows) >= limit else ""
    console.print(
        f"{totals['streams']} live{more}: {totals['open']} open, {totals['closing']} closing, "
        f"{totals['flushing']} flushing now; {totals['chars']} chars in {totals['messages']} "
        f"messages; schedules: {totals['due']} due, {totals['watched']} watched",
        highlight=False,
    )
    return 0


# inspect ---------------------------------------------------------------------------------------
def _ago(now_ms: int, value: str | int | None) -> str:
    if not value:
        return "-"
    delta = (now_ms - int(value)) / 1000
    return f"{delta:.1f} s ago" if delta >= 0 else f"in {-delta:.1f} s"


def _pairs_table(title: str, pairs: list[tuple[str, object]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in pairs:
        table.add_row(name, "-" if value is None else str(value))
    return table


def inspect(settings: Settings, console: Console, stream_id: str, as_json: bool) -> int:
    """Print everything Redis holds about one stream."""
    try:
        view = open_store(settings).describe(stream_id)
    except StreamNotFound:
        console.print(f"no stream {stream_id!r} in Redis (never started, or its keys expired)",
                      markup=False, highlight=False)
        return NOT_FOUND
    now, meta, sent, state = view["now_ms"], view["meta"], view["sent"], view["state"]
    if as_json:
        doc = {k: v for k, v in view.items() if k != "state"}
        doc["state"] = {"version": state.version, **json.loads(state.to_json())}
        console.print_json(json.dumps(doc))
        return 0
    console.print(_pairs_table(f"stream {stream_id}", [
        *((k, meta.get(k)) for k in ("channel", "account", "chat_id", "format", "interval_ms",
                                     "status", "close_reason", "native", "max_units")),
        ("created", _ago(now, meta.get("created_ms"))),
        ("last text", _ago(now, meta.get("touched_ms"))),
        ("last heartbeat", _ago(now, meta.get("alive_ms"))),
        ("stopped", _ago(now, meta.get("closed_ms"))),
        ("finished", _ago(now, meta.get("finished_ms"))),
        ("text", f"{view['chars']} chars, {view['text_b']} bytes, {view['marks']} tool marks"),
        ("state", state_of(view, now) if meta else "expired"),
        ("lease holder", f"{view['lease']} ({view['lease_ms']} ms left)" if view["lease"]
         else "-"),
        ("flush due", _ago(now, view["due_ms"])),
        ("watchdog", _ago(now, view["watch_ms"])),
        ("keys expire", f"in {view['ttl_s']} s" if view["ttl_s"] >= 0 else "-"),
    ]))
    segments = Table(title="sent state per segment", title_justify="left")
    for name in ("#", "message id", "start", "cut", "shown", "plain", "sealed", "lead"):
        segments.add_column(name, overflow="fold")
    for i, s in enumerate(state.segments):
        segments.add_row(str(i), s.message_id or "-", str(s.start), str(s.cut), str(s.shown),
                         "yes" if s.plain else "", "yes" if s.sealed else "", repr(s.lead))
    console.print(segments)
    console.print(_pairs_table("versions and counters", [
        ("version", state.version),
        ("flushed at", _ago(now, sent.get("flushed_at_ms"))),
        *((k, sent.get(k)) for k in ("flushed_b", "delivered_b", "read_b", "read_c")),
        ("budget ticket", _ago(now, sent.get("ticket_ms"))),
        *sorted(state.counts.items()),
        ("first visible", None if state.first_visible_ms is None
         else f"{state.first_visible_ms} ms"),
        ("orphans", view["orphans"]),
        ("failure", state.failure),
        ("last error", state.last_error),
    ]))
    result = view["result"]
    if result is not None:
        console.print(_pairs_table("result", list(result.items())))
    else:
        console.print("result: none yet", highlight=False)
    return 0
