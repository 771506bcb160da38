"""The Telegram emulator, judged over real HTTP (requests) against 127.0.0.1 on a free port."""

from __future__ import annotations

import html
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from sandbox.telegram import (
    NOT_MODIFIED,
    FloodControl,
    Knobs,
    TelegramEmulator,
    utf16_len,
    visible_text,
)

TOKEN = "123456:test-Token_abc"
#: limits high enough that only the rate-limit tests ever see a 429
ROOMY = {
    "private_rate": 1000.0,
    "private_burst": 1000,
    "group_per_minute": 60000.0,
    "group_burst": 1000,
    "global_rate": 1000.0,
    "global_burst": 1000,
}


@pytest.fixture
def make_emu() -> Iterator[Any]:
    started: list[TelegramEmulator] = []

    def make(**knobs: Any) -> TelegramEmulator:
        emu = TelegramEmulator(**{"seed": 7, **ROOMY, **knobs}).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(make_emu: Any) -> TelegramEmulator:
    return make_emu()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def api(
    http: requests.Session, emu: TelegramEmulator, method: str, token: str = TOKEN, **params: Any
) -> requests.Response:
    return http.post(f"{emu.base_url}/bot{token}/{method}", json=params, timeout=5)


def error(reply: requests.Response) -> tuple[int, str]:
    body = reply.json()
    assert body["ok"] is False
    assert body["error_code"] == reply.status_code
    return reply.status_code, body["description"]


# -- round trip and ledger --------------------------------------------------------------------


def test_get_me_names_the_bot_of_the_token(http, emu):
    body = api(http, emu, "getMe").json()
    assert body["ok"] is True
    assert body["result"]["id"] == 123456
    assert body["result"]["is_bot"] is True


def test_send_edit_delete_round_trip(http, emu):
    sent = api(http, emu, "sendMessage", chat_id=42, text="Hel").json()["result"]
    assert sent["message_id"] == 1
    assert sent["chat"]["id"] == 42
    assert sent["text"] == "Hel"
    assert isinstance(sent["date"], int)

    edited = api(http, emu, "editMessageText", chat_id="42", message_id=1, text="Hello")
    assert edited.json()["result"]["text"] == "Hello"
    second = api(http, emu, "sendMessage", chat_id=42, text="more").json()["result"]
    assert second["message_id"] == 2

    [first, _] = emu.messages(42)
    assert (first.text, first.raw_text, first.edits) == ("Hello", "Hello", 1)
    assert [text for _, text in first.history] == ["Hel", "Hello"]
    assert first.created_at <= first.updated_at
    assert emu.texts("42") == ["Hello", "more"]

    assert api(http, emu, "deleteMessage", chat_id=42, message_id=1).json() == {
        "ok": True,
        "result": True,
    }
    assert emu.texts(42) == ["more"]
    assert [(c.method, c.status, c.message_id) for c in emu.calls] == [
        ("sendMessage", 200, 1),
        ("editMessageText", 200, 1),
        ("sendMessage", 200, 2),
        ("deleteMessage", 200, 1),
    ]
    assert emu.count(method="sendMessage", status=200, chat_id=42) == 2


def test_message_ids_count_per_chat(http, emu):
    for chat in (1, 2, 1):
        api(http, emu, "sendMessage", chat_id=chat, text="x")
    assert [m.message_id for m in emu.messages(1)] == [1, 2]
    assert [m.message_id for m in emu.messages(2)] == [1]


def test_form_bodies_and_query_strings_are_accepted(http, emu):
    url = f"{emu.base_url}/bot{TOKEN}"
    form = http.post(f"{url}/sendMessage", data={"chat_id": "-5", "text": "form"}, timeout=5)
    query = http.get(f"{url}/sendMessage", params={"chat_id": "-5", "text": "query"}, timeout=5)
    assert form.status_code == query.status_code == 200
    assert emu.texts(-5) == ["form", "query"]


def test_malformed_body_is_a_400_and_the_connection_lives_on(http, emu):
    reply = http.post(
        f"{emu.base_url}/bot{TOKEN}/sendMessage",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert reply.status_code == 400
    assert reply.json()["ok"] is False
    assert api(http, emu, "sendMessage", chat_id=1, text="after").status_code == 200


def test_unknown_method_is_404(http, emu):
    assert error(api(http, emu, "sendTelepathy", chat_id=1)) == (404, "Not Found")


def test_ledger_endpoint_reports_chats_and_call_counts(http, emu):
    api(http, emu, "sendMessage", chat_id=9, text="one")
    api(http, emu, "sendMessage", chat_id=9, text="")
    ledger = http.get(f"{emu.base_url}/_sandbox/ledger", timeout=5).json()
    assert ledger["chats"] == {
        "9": [{"message_id": 1, "text": "one", "edits": 0, "deleted": False}]
    }
    assert {(c["method"], c["status"], c["count"]) for c in ledger["calls"]} == {
        ("sendMessage", 200, 1),
        ("sendMessage", 400, 1),
    }
    assert len(emu.calls) == 2  # the ledger request itself is not a Bot API call


def test_control_endpoints_drive_the_emulator_from_another_process(http, emu):
    control = f"{emu.base_url}/_sandbox"
    api(http, emu, "sendMessage", chat_id=6, text="one")
    assert http.post(f"{control}/delete", json={"chat_id": 6, "message_id": 1}, timeout=5).ok
    assert emu.texts(6) == []
    assert http.post(f"{control}/block", data={"chat_id": "6"}, timeout=5).ok
    assert api(http, emu, "sendMessage", chat_id=6, text="x").status_code == 403
    assert http.post(f"{control}/configure", data={"error_rate": "1"}, timeout=5).ok
    assert emu.knobs.error_rate == 1.0
    assert http.post(f"{control}/configure", json={"bogus": 1}, timeout=5).status_code == 400
    assert http.post(f"{control}/reset", timeout=5).ok
    assert emu.calls == []
    assert http.get(f"{control}/ledger", timeout=5).json()["chats"] == {}


def test_command_line_serves_until_stopped(http):
    command = [sys.executable, "-m", "sandbox.telegram", "--port", "0", "--error-rate", "1"]
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[-1]
            assert url.startswith("http://127.0.0.1:")
            reply = http.post(f"{url}/bot{TOKEN}/getMe", timeout=5)
            assert reply.status_code == 500
        finally:
            process.terminate()


# -- text rules --------------------------------------------------------------------------------


def test_identical_edit_is_not_modified(http, emu):
    api(http, emu, "sendMessage", chat_id=1, text="<b>same</b>", parse_mode="HTML")
    same = api(
        http, emu, "editMessageText", chat_id=1, message_id=1, text="<b>same</b>", parse_mode="HTML"
    )
    assert error(same) == (400, NOT_MODIFIED)
    other_mode = api(http, emu, "editMessageText", chat_id=1, message_id=1, text="same")
    assert other_mode.status_code == 200
    assert emu.messages(1)[0].edits == 1


def test_length_counts_utf16_units_of_visible_text(http, emu):
    assert utf16_len("😀") == 2
    fits = "😀" * 2048
    assert api(http, emu, "sendMessage", chat_id=1, text=fits).status_code == 200
    assert error(api(http, emu, "sendMessage", chat_id=1, text=fits + "a")) == (
        400,
        "Bad Request: message is too long",
    )
    tagged = "<b>" + "a" * 4096 + "</b>"
    assert api(http, emu, "sendMessage", chat_id=1, text=tagged, parse_mode="HTML").ok
    too_long_edit = api(http, emu, "editMessageText", chat_id=1, message_id=1, text="b" * 4097)
    assert error(too_long_edit)[1] == "Bad Request: message is too long"
    assert emu.texts(1) == [fits, "a" * 4096]


def test_max_units_is_a_knob(http, make_emu):
    emu = make_emu(max_units=5)
    assert api(http, emu, "sendMessage", chat_id=1, text="12345").ok
    assert api(http, emu, "sendMessage", chat_id=1, text="123456").status_code == 400


@pytest.mark.parametrize(
    "params",
    [{}, {"text": ""}, {"text": " \n\t "}, {"text": "<b> </b>", "parse_mode": "HTML"}],
)
def test_empty_text_is_refused(http, emu, params):
    reply = api(http, emu, "sendMessage", chat_id=1, **params)
    assert error(reply) == (400, "Bad Request: message text is empty")
    assert emu.texts(1) == []


def test_visible_text_is_trimmed_like_telegram(http, emu):
    assert api(http, emu, "sendMessage", chat_id=1, text="  hi \n").json()["result"]["text"] == "hi"
    assert emu.messages(1)[0].raw_text == "  hi \n"


def test_missing_chat_id_is_chat_not_found(http, emu):
    assert error(api(http, emu, "sendMessage", text="x")) == (400, "Bad Request: chat not found")


def test_edit_after_user_deleted_is_not_found(http, emu):
    api(http, emu, "sendMessage", chat_id=3, text="doomed")
    emu.delete(3, 1)
    assert emu.texts(3) == []
    reply = api(http, emu, "editMessageText", chat_id=3, message_id=1, text="again")
    assert error(reply) == (400, "Bad Request: message to edit not found")
    gone = api(http, emu, "deleteMessage", chat_id=3, message_id=1)
    assert error(gone) == (400, "Bad Request: message to delete not found")
    never = api(http, emu, "editMessageText", chat_id=3, message_id=99, text="x")
    assert error(never)[1] == "Bad Request: message to edit not found"


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("é <br>", 'Unsupported start tag "br" at byte offset 3'),
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("Tom & Jerry", 'Character "&" at byte offset 4 must be escaped as "&amp;"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_html_parse_errors(http, emu, text, description):
    reply = api(http, emu, "sendMessage", chat_id=1, text=text, parse_mode="HTML")
    assert error(reply) == (400, f"Bad Request: can't parse entities: {description}")
    assert emu.texts(1) == []


def test_html_visible_text(http, emu):
    html = (
        "<b>bold</b> <STRONG>s</STRONG> <i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>"
        "<strike>k</strike><del>d</del> &lt;tag&gt; &amp; &quot;q&quot; &#65;&#x42; "
        '<a href="https://x.example/?a=1&amp;b=2">link</a> '
        '<pre><code class="language-python">x = 1</code></pre> '
        "<blockquote expandable>quote</blockquote> <tg-spoiler>t</tg-spoiler> "
        '<span class="tg-spoiler">s</span>'
    )
    reply = api(http, emu, "sendMessage", chat_id=1, text=html, parse_mode="html")
    expected = 'bold s ieunskd <tag> & "q" AB link x = 1 quote t s'
    assert reply.json()["result"]["text"] == expected
    [message] = emu.messages(1)
    assert (message.text, message.raw_text, message.parse_mode) == (expected, html, "HTML")


@given(st.text())
def test_escaped_html_shows_exactly_the_text(text):
    assert visible_text(html.escape(text), "HTML") == text


@given(st.text())
def test_escaped_markdown_v2_shows_exactly_the_text(text):
    escaped = "".join("\\" + c if c in "_*[]()~`>#+-=|{}.!\\" else c for c in text)
    assert visible_text(escaped, "MarkdownV2") == text


MARKUP_V2 = "*bold* _it_ __u__ ~s~ ||sp|| `c` \\. [link](http://x.example/\\))"


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        (MARKUP_V2, "bold it u s sp c . link"),
        ("```python\nprint(1)\n```", "print(1)\n"),
        (">quote\n**>more\n>end||", "quote\nmore\nend"),
    ],
)
def test_markdown_v2_visible_text(text, visible):
    assert visible_text(text, "MarkdownV2") == visible


RESERVED_DOT = "Character '.' is reserved and must be escaped with the preceding '\\'"


@pytest.mark.parametrize(
    ("mode", "text", "description"),
    [
        ("MarkdownV2", "Done.", RESERVED_DOT),
        ("MarkdownV2", "*open", "Can't find end of Bold entity at byte offset 0"),
        ("Markdown", "é *open", "Can't find end of the entity starting at byte offset 3"),
    ],
)
def test_markdown_parse_errors(http, emu, mode, text, description):
    reply = api(http, emu, "sendMessage", chat_id=1, text=text, parse_mode=mode)
    assert error(reply) == (400, f"Bad Request: can't parse entities: {description}")


def test_legacy_markdown_visible_text(http, emu):
    reply = api(
        http,
        emu,
        "sendMessage",
        chat_id=1,
        text="*b* _i_ `c` [l](http://x) 1.5!",
        parse_mode="Markdown",
    )
    assert reply.json()["result"]["text"] == "b i c l 1.5!"


def test_unknown_parse_mode_is_refused(http, emu):
    reply = api(http, emu, "sendMessage", chat_id=1, text="x", parse_mode="BBCode")
    assert error(reply) == (400, "Bad Request: unsupported parse_mode")


# -- permissions -------------------------------------------------------------------------------


def test_only_the_configured_token_is_accepted(http, make_emu):
    emu = make_emu(token=TOKEN)
    assert api(http, emu, "getMe").ok
    assert error(api(http, emu, "getMe", token="123456:other")) == (401, "Unauthorized")


def test_malformed_token_is_unauthorized(http, emu):
    reply = api(http, emu, "sendMessage", token="not-a-token", chat_id=1, text="x")
    assert error(reply) == (401, "Unauthorized")
    assert emu.texts(1) == []


def test_blocked_chat_is_forbidden(http, emu):
    api(http, emu, "sendMessage", chat_id=8, text="hi")
    emu.block(8)
    forbidden = (403, "Forbidden: bot was blocked by the user")
    assert error(api(http, emu, "sendMessage", chat_id=8, text="again")) == forbidden
    assert error(api(http, emu, "editMessageText", chat_id=8, message_id=1, text="x")) == forbidden
    assert api(http, emu, "sendMessage", chat_id=9, text="other chat").ok
    emu.reset()
    assert api(http, emu, "sendMessage", chat_id=8, text="unblocked").ok


# -- flood limits ------------------------------------------------------------------------------


def test_private_burst_then_429_with_growing_penalty(http, make_emu):
    emu = make_emu(private_rate=0.5, private_burst=2)
    assert api(http, emu, "sendMessage", chat_id=1, text="a").ok
    assert api(http, emu, "editMessageText", chat_id=1, message_id=1, text="b").ok
    limited = api(http, emu, "sendMessage", chat_id=1, text="c")
    assert limited.status_code == 429
    assert limited.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 2",
        "parameters": {"retry_after": 2},
    }
    again = api(http, emu, "editMessageText", chat_id=1, message_id=1, text="d")
    assert again.json()["parameters"]["retry_after"] == 3  # flooding while limited costs 1 s more
    assert api(http, emu, "sendMessage", chat_id=2, text="other chat").ok
    assert api(http, emu, "sendChatAction", chat_id=1, action="typing").ok
    assert api(http, emu, "deleteMessage", chat_id=1, message_id=1).ok
    assert emu.count(status=429, chat_id=1) == 2
    assert [c.retry_after for c in emu.calls if c.status == 429] == [2, 3]


def test_group_budget_is_per_minute(http, make_emu):
    emu = make_emu(group_per_minute=2, group_burst=1)
    assert api(http, emu, "sendMessage", chat_id=-100, text="a").ok
    limited = api(http, emu, "sendMessage", chat_id=-100, text="b")
    assert limited.json()["parameters"]["retry_after"] == 30
    assert api(http, emu, "sendMessage", chat_id=100, text="private is separate").ok


def test_global_budget_spans_chats(http, make_emu):
    emu = make_emu(global_rate=1.0, global_burst=2)
    assert api(http, emu, "sendMessage", chat_id=1, text="a").ok
    assert api(http, emu, "sendMessage", chat_id=2, text="b").ok
    assert api(http, emu, "sendMessage", chat_id=3, text="c").status_code == 429


def test_flood_control_refusals_take_no_budget():
    flood = FloodControl(Knobs(private_rate=1.0, private_burst=1))
    assert flood.acquire(1, "7", now=0.0) is None
    assert flood.acquire(1, "7", now=0.2) == 1  # token due at 1.0
    assert flood.acquire(1, "7", now=0.5) == 2  # called inside the penalty: window grows to 2.0
    assert flood.acquire(1, "7", now=2.0) is None  # waited as told: the untouched token is there
    assert flood.acquire(1, "7", now=2.1) == 1


# -- faults ------------------------------------------------------------------------------------


def test_error_rate_answers_500_without_side_effect(http, make_emu):
    emu = make_emu(error_rate=1.0)
    reply = api(http, emu, "sendMessage", chat_id=1, text="x")
    assert reply.status_code == 500
    assert reply.json() == {"ok": False, "error_code": 500, "description": "Internal Server Error"}
    assert emu.texts(1) == []
    assert emu.count(method="sendMessage", status=500, chat_id=1) == 1
    assert http.get(f"{emu.base_url}/_sandbox/ledger", timeout=5).ok  # control is never faulted


def test_drop_rate_closes_the_connection_without_side_effect(http, make_emu):
    emu = make_emu(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api(http, emu, "sendMessage", chat_id=1, text="x")
    assert emu.texts(1) == []
    assert emu.count(status=0) == 1
    emu.configure(drop_rate=0.0)
    assert api(http, emu, "sendMessage", chat_id=1, text="y").ok  # the session recovers


def test_drop_after_rate_processes_then_drops(http, make_emu):
    emu = make_emu(drop_after_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api(http, emu, "sendMessage", chat_id=1, text="x")
    assert emu.texts(1) == ["x"]
    [call] = emu.calls
    assert (call.status, call.ok, call.fault, call.message_id) == (0, True, "drop_after", 1)


def test_seeded_faults_are_reproducible(http, make_emu):
    runs = []
    for _ in range(2):
        emu = make_emu(error_rate=0.5, seed=3)
        runs.append([api(http, emu, "getMe").status_code for _ in range(12)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}


def test_latency_delays_every_request(http, make_emu):
    emu = make_emu(latency=0.05)
    started = time.monotonic()
    api(http, emu, "getMe")
    assert time.monotonic() - started >= 0.05


# -- waiting -----------------------------------------------------------------------------------


def _send_soon(emu, text: str) -> threading.Timer:
    """sendMessage to chat 5 from another thread, 50 ms from now."""

    def send() -> None:
        with requests.Session() as other:
            api(other, emu, "sendMessage", chat_id=5, text=text)

    timer = threading.Timer(0.05, send)
    timer.start()
    return timer


def test_wait_for_wakes_on_a_message_from_another_thread(http, emu):
    started = time.monotonic()
    sender = _send_soon(emu, "late")
    assert emu.texts(5) == []
    assert emu.wait_for(lambda e: e.texts(5) == ["late"], timeout=5)
    # woken by the change, not by the final check wait_for makes at its timeout
    assert time.monotonic() - started < 2.5
    sender.join()


def test_wait_for_wakes_on_a_call_that_changes_no_message(make_emu):
    emu = make_emu(error_rate=1.0)
    started = time.monotonic()
    caller = _send_soon(emu, "lost")
    assert emu.wait_for(lambda e: e.count(status=500) == 1, timeout=5)
    assert time.monotonic() - started < 2.5
    caller.join()


def test_wait_for_times_out(emu):
    started = time.monotonic()
    assert emu.wait_for(lambda e: e.texts(5), timeout=0.1) is False
    assert time.monotonic() - started >= 0.1


def test_drafts_are_recorded_not_sent(http, emu):
    assert api(http, emu, "sendMessageDraft", chat_id=4, draft_id=1, text="typing…").ok
    assert [d.text for d in emu.drafts(4)] == ["typing…"]
    assert emu.texts(4) == []
    group = api(http, emu, "sendMessageDraft", chat_id=-4, draft_id=1, text="x")
    assert group.status_code == 400
