"""The live chat page any sandbox can serve: the conversation as a user would see it.

Routes (GET), mounted by an emulator's HTTP handler through :func:`handle`:

- ``/chats``: links to every chat the sandbox holds;
- ``/chats/<id>``: the page: one bubble per visible message with its current text and an
  "edited" marker, and a side log of API calls (counts per method and status, 429s and faults
  highlighted; each call of this chat where the emulator keeps a call list);
- ``/chats/<id>/events``: Server-Sent Events, one ``data:`` JSON state per change of the chat;
- ``/chats/<id>/state``: the same state as one JSON document.

Everything is rendered from the emulator's ``ledger()`` JSON (sandbox/registry.py); changes are
noticed through its ``wait_for``, so the page costs nothing while the chat is quiet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["chat_page_url", "chat_state", "handle"]

#: seconds between keep-alive comments on a quiet event stream (also how soon a closed tab's
#: connection is noticed)
KEEPALIVE = 5.0
#: most recent calls of the chat shown in the side log
LOG_SIZE = 200


def chat_page_url(emulator: Any, chat_id: str) -> str | None:
    """The page's URL for ``chat_id``, or None when the emulator does not serve the page."""
    if not getattr(emulator, "serves_chat_page", False):
        return None
    return f"{emulator.base_url}/chats/{quote(str(chat_id), safe='')}"


def chat_state(emulator: Any, chat_id: str) -> dict[str, Any]:
    """What the page shows for ``chat_id``, from ``ledger()`` (plus the emulator's call list)."""
    ledger = emulator.ledger()
    messages = ledger["chats"].get(chat_id, [])
    return {
        "chat_id": chat_id,
        "messages": [m for m in messages if not m["deleted"]],
        "deleted": sum(1 for m in messages if m["deleted"]),
        "calls": ledger["calls"],
        "total_calls": ledger["total_calls"],
        "log": _chat_log(emulator, chat_id),
    }


def _chat_log(emulator: Any, chat_id: str) -> list[dict[str, Any]]:
    """The chat's latest calls where the emulator keeps them (Telegram's ``calls``), else []."""
    calls = getattr(emulator, "calls", None)
    if not isinstance(calls, list) or not calls:
        return []
    t0 = getattr(calls[0], "t", 0.0)
    mine = [c for c in calls if getattr(c, "chat_id", None) == chat_id][-LOG_SIZE:]
    return [
        {
            "t": round(getattr(c, "t", t0) - t0, 3),
            "method": getattr(c, "method", "?"),
            "status": getattr(c, "status", None),
            "error": getattr(c, "error", None),
            "retry_after": getattr(c, "retry_after", None),
            "fault": getattr(c, "fault", None),
        }
        for c in mine
    ]


def _changed_since(chat_id: str, last: dict[str, Any] | None) -> Any:
    """A ``wait_for`` predicate: true when the chat differs from ``last`` at its first call
    (made under the ledger's lock), and at every later call, each of which is a ledger change
    made after that look: no change slips in between the look and the wait."""
    looked = False

    def changed(emulator: Any) -> bool:
        nonlocal looked
        if looked:
            return True
        looked = True
        return chat_state(emulator, chat_id) != last

    return changed


def _changes(emulator: Any, chat_id: str) -> Iterator[dict[str, Any] | None]:
    """Each new state of the chat as it changes; None after KEEPALIVE seconds of quiet."""
    last: dict[str, Any] | None = None
    while True:
        if not emulator.wait_for(_changed_since(chat_id, last), KEEPALIVE):
            yield None
            continue
        state = chat_state(emulator, chat_id)
        if state != last:
            last = state
            yield state


def handle(handler: BaseHTTPRequestHandler, emulator: Any, path: str) -> bool:
    """Answer a page route on ``handler``; False when ``path`` is not one (the caller goes on)."""
    if path == "/favicon.ico":  # browsers ask; it must not reach the platform API (or ledger)
        _send(handler, 404, "text/plain", b"")
        return True
    parts = path.strip("/").split("/")
    if parts[0] != "chats" or len(parts) > 3:
        return False
    if not hasattr(emulator, "ledger"):
        _send(handler, 404, "text/plain", b"this sandbox keeps no ledger()")
    elif len(parts) == 1:
        _send(handler, 200, "text/html; charset=utf-8", _index(emulator).encode())
    else:
        chat_id = unquote(parts[1])
        view = parts[2] if len(parts) == 3 else "page"
        if view == "page":
            _send(handler, 200, "text/html; charset=utf-8", _page(chat_id).encode())
        elif view == "state":
            body = json.dumps(chat_state(emulator, chat_id), ensure_ascii=False).encode()
            _send(handler, 200, "application/json", body)
        elif view == "events":
            _events(handler, emulator, chat_id)
        else:
            _send(handler, 404, "text/plain", b"not found")
    return True


def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    handler.wfile.write(body)


def _events(handler: BaseHTTPRequestHandler, emulator: Any, chat_id: str) -> None:
    """Serve the event stream until the browser goes away (or the sandbox stops)."""
    handler.close_connection = True
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.send_header("Cache-Control", "no-store")
    handler.send_header("Connection", "close")
    handler.end_headers()
    try:
        for state in _changes(emulator, chat_id):
            if state is None:
                handler.wfile.write(b": keep-alive\n\n")
            else:
                data = json.dumps(state, ensure_ascii=False)
                handler.wfile.write(f"data: {data}\n\n".encode())
            handler.wfile.flush()
    except OSError:  # the browser closed the page, or the sandbox cut its connections
        return


def _index(emulator: Any) -> str:
    chats = emulator.ledger()["chats"]
    items = "".join(
        f'<li><a href="/chats/{quote(chat, safe="")}">{escape(chat)}</a> '
        f"({sum(1 for m in msgs if not m['deleted'])} messages)</li>"
        for chat, msgs in sorted(chats.items())
    )
    return (
        '<!doctype html><meta charset=utf-8><link rel="icon" href="data:,">'
        "<title>sandbox chats</title>"
        f"<h1>Sandbox chats</h1><ul>{items or '<li>no chat yet</li>'}</ul>"
    )


def _page(chat_id: str) -> str:
    return _PAGE.replace("__CHAT_ID__", json.dumps(chat_id).replace("<", "\\u003c"))


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>sandbox chat</title>
<style>
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #dfe6ee; color: #111; }
  header { padding: 10px 16px; background: #517da2; color: #fff; display: flex; gap: 16px;
           align-items: baseline; }
  header h1 { font-size: 17px; margin: 0; }
  #status.live { color: #b8f5b0; } #status.down { color: #ffd0d0; }
  main { display: grid; grid-template-columns: 1fr 340px; height: calc(100vh - 44px); }
  #messages { overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 8px; }
  .bubble { align-self: flex-start; max-width: 75%; background: #fff; border-radius: 12px;
            padding: 8px 12px; box-shadow: 0 1px 1px rgba(0,0,0,.15); }
  .bubble .text { white-space: pre-wrap; overflow-wrap: anywhere; }
  .bubble .meta { font-size: 12px; color: #8a97a4; text-align: right; margin-top: 4px; }
  .empty { color: #667; align-self: center; }
  aside { overflow-y: auto; background: #f6f8fa; border-left: 1px solid #c9d3dd; padding: 8px 12px;
          font: 12px/1.35 ui-monospace, monospace; }
  aside h2 { font: 600 13px system-ui, sans-serif; margin: 8px 0 4px; }
  table { border-collapse: collapse; width: 100%; }
  td { padding: 1px 4px; } td.n { text-align: right; }
  .s429 { color: #b45f00; font-weight: 600; } .fault { color: #c0162b; font-weight: 600; }
  ol { padding-left: 0; list-style: none; margin: 0; }
</style>
</head>
<body>
<header>
  <h1>Chat <span id="chat"></span></h1>
  <span id="count">0 messages</span>
  <span id="status">connecting…</span>
</header>
<main>
  <section id="messages"><div class="empty">no message yet</div></section>
  <aside>
    <h2>API calls (<span id="total">0</span>)</h2>
    <table id="calls"></table>
    <h2>This chat</h2>
    <ol id="log"></ol>
  </aside>
</main>
<script>
"use strict";
const chatId = __CHAT_ID__;
const $ = (id) => document.getElementById(id);
let updates = 0;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function kind(status) {
  if (status === 429) return "s429";
  return status === 0 || status >= 500 ? "fault" : "";
}

function render(state) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...state.messages.map((m) => {
    const bubble = el("div", "bubble");
    bubble.dataset.messageId = m.message_id;
    bubble.dataset.edits = m.edits;
    bubble.append(el("div", "text", m.text));
    bubble.append(el("div", "meta", m.edits ? "edited" : ""));
    return bubble;
  }));
  if (!state.messages.length) box.append(el("div", "empty", "no message yet"));
  if (atBottom) box.scrollTop = box.scrollHeight;
  const n = state.messages.length;
  $("count").textContent = n + (n === 1 ? " message" : " messages") +
    (state.deleted ? ", " + state.deleted + " deleted" : "");
  $("total").textContent = state.total_calls;
  $("calls").replaceChildren(...state.calls.map((c) => {
    const row = el("tr", kind(c.status));
    row.append(el("td", "", c.method), el("td", "", c.status === 0 ? "dropped" : c.status),
               el("td", "n", "×" + c.count));
    return row;
  }));
  $("log").replaceChildren(...state.log.map((c) => {
    let line = c.t.toFixed(3) + "s " + c.method + " " + (c.status === 0 ? "dropped" : c.status);
    if (c.retry_after !== null) line += " retry_after=" + c.retry_after;
    if (c.fault) line += " [" + c.fault + "]";
    if (c.error) line += " " + c.error;
    return el("li", kind(c.status) || (c.fault ? "fault" : ""), line);
  }));
  updates += 1;
  document.body.dataset.updates = updates;
}

$("chat").textContent = chatId;
document.title = "sandbox chat " + chatId;
const events = new EventSource(location.pathname.replace(/\\/+$/, "") + "/events");
events.onopen = () => { $("status").textContent = "live"; $("status").className = "live"; };
events.onerror = () => {
  $("status").textContent = "reconnecting…";
  $("status").className = "down";
};
events.onmessage = (event) => render(JSON.parse(event.data));
</script>
</body>
</html>
"""
