"""Slack: error mapping, spec, mrkdwn rendering (property tests) and the native-stream logic
against the Slack sandbox."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.slack import SlackEmulator
from sandbox.slack.mrkdwn import MrkdwnError, visible_text
from tokenrelay.config import Settings
from tokenrelay.specs import get_spec
from workers.channels import base as errors
from workers.channels.http import Reply, Transport
from workers.channels.slack import SlackClient, read_error
from workers.channels.slack_markdown import ZWSP, mrkdwn_units, plain_mrkdwn, to_mrkdwn
from workers.channels.telegram_markdown import open_fence, to_telegram_html
from workers.channels.telegram_markdown import visible_text as html_visible

TOKEN = "xoxb-unit-test"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MARKDOWN = st.lists(
    st.sampled_from([*"ab *_~`#>-[]()\\&<|\n", "https://x.io", "```py\n"]), max_size=40
).map("".join)
PLAIN = st.lists(
    st.sampled_from([*"ab 1&<>\n", "\n```\n", "\n```py\n", "\n\n"]), max_size=40
).map("".join)


def _squash(text: str) -> str:
    return "".join(text.replace(ZWSP, "").split())


def _markdown_visible(markdown: str) -> str:
    return html_visible(to_telegram_html(markdown, final=True))


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"}),
         errors.RateLimited),
        (Reply(200, {}, {"ok": False, "error": "message_not_found"}), errors.MessageGone),
        (Reply(200, {}, {"ok": False, "error": "msg_too_long"}), errors.TooLong),
        (Reply(200, {}, {"ok": False, "error": "no_text"}), errors.Rejected),
        (Reply(200, {}, {"ok": False, "error": "invalid_auth"}), errors.PermanentFailure),
        (Reply(200, {}, {"ok": False, "error": "channel_not_found"}), errors.PermanentFailure),
        (Reply(200, {}, {"ok": False, "error": "not_in_channel"}), errors.PermanentFailure),
        (Reply(200, {}, {"ok": False, "error": "account_inactive"}), errors.PermanentFailure),
        (Reply(200, {}, {"ok": False, "error": "internal_error"}), errors.TransientFailure),
    ],
)
def test_error_replies_map_to_core_error_types(reply: Reply, kind: type) -> None:
    err = read_error("chat.update", reply)
    assert type(err) is kind
    assert err.method == "chat.update"


def test_rate_limit_reads_retry_after_header_in_any_case() -> None:
    err = read_error("chat.update", Reply(429, {"retry-after": "3"}, {"ok": False}))
    assert isinstance(err, errors.RateLimited) and err.retry_after == 3


def test_an_unknown_refusal_is_a_failure_naming_slacks_error_never_shown() -> None:
    err = read_error("chat.postMessage", Reply(200, {}, {"ok": False, "error": "weird_new"}))
    assert isinstance(err, errors.PermanentFailure)
    assert "weird_new" in str(err) and err.code == "weird_new"


def test_spec_validates_conversation_ids() -> None:
    spec = get_spec("slack", Settings())
    assert spec.normalize_chat_id("c0123abcd") == "C0123ABCD"
    assert spec.normalize_chat_id("D024BE91L") == "D024BE91L"
    for bad in ("#general", "X123", "", 42):
        with pytest.raises(ValueError, match="slack chat_id"):
            spec.normalize_chat_id(bad)


def test_budgets_share_one_scope_and_model_the_workspace() -> None:
    client = SlackClient(TOKEN, "acme", Transport(1.0))
    one, other = client.budgets("C1"), client.budgets("C2")
    assert {b.scope for b in one + other} == {"slack:acme"}
    assert [b for b in one if "workspace" in b.name] == [b for b in other if "workspace" in b.name]
    assert one[0] != other[0], "postMessage is paced per channel"


def test_malformed_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(errors.PermanentFailure) as info:
        SlackClient("not a token", "default", Transport(1.0))
    assert "not a token" not in str(info.value)


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**Done** & see [docs](https://x.io)", "*Done* &amp; see <https://x.io|docs>"),
        ("_it_ ~~gone~~ `a<b`", "_it_ ~gone~ `a&lt;b`"),
        ("```py\nif a < b: pass\n```", "```\nif a &lt; b: pass\n```"),
        ("> quoted **x**", "> quoted *x*"),
        ("**half-writ", "*half-writ*"),
        ("2*3", f"2{ZWSP}*{ZWSP}3"),
    ],
)
def test_examples(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_the_emulator_reader_is_strict_about_escapes() -> None:
    with pytest.raises(MrkdwnError):
        visible_text("a & b")
    with pytest.raises(MrkdwnError):
        visible_text("a <b")
    assert visible_text("<https://x.io|docs> &lt;3") == "docs <3"


@FAST
@given(MARKDOWN, st.booleans())
def test_any_text_renders_to_valid_mrkdwn_showing_the_markdowns_text(
    markdown: str, final: bool
) -> None:
    html = to_telegram_html(markdown, final=final)
    shown = visible_text(to_mrkdwn(markdown, final=final))  # raises when not valid
    assert shown == html_visible(html).replace(ZWSP, "")


@FAST
@given(MARKDOWN)
def test_rendered_length_never_exceeds_the_unit_count(markdown: str) -> None:
    assert len(to_mrkdwn(markdown, final=True)) <= mrkdwn_units(markdown)
    assert len(plain_mrkdwn(markdown)) <= mrkdwn_units(markdown)


@FAST
@given(PLAIN)
def test_plain_text_shows_as_written(text: str) -> None:
    assert visible_text(plain_mrkdwn(text)) == text


@FAST
@given(MARKDOWN, st.data())
def test_any_cut_point_gives_valid_chunks_that_together_show_the_whole(
    markdown: str, data: st.DataObject
) -> None:
    """A cut at a line boundary (where the splitter cuts) loses and repeats nothing, and an
    open code fence is reopened in the next chunk."""
    lines = [i + 1 for i, c in enumerate(markdown) if c == "\n"]
    cut = data.draw(st.sampled_from([0, *lines, len(markdown)]))
    head = markdown[:cut]
    tail = open_fence(head) + markdown[cut:]
    chunks = [visible_text(to_mrkdwn(part, final=True)) for part in (head, tail)]
    assert _squash("".join(chunks)) == _squash(_markdown_visible(markdown))


@FAST
@given(PLAIN, st.data())
def test_any_cut_of_code_and_escapes_never_splits_an_entity(
    text: str, data: st.DataObject
) -> None:
    """Mid-line too: escapes are made per chunk, so no cut can land inside one. (Not inside a
    markup token of the Markdown, a fence line or a leading ``>``: the splitter cuts
    at whitespace.)"""
    cut = data.draw(st.integers(0, len(text)).filter(
        lambda c: not text[c:].lstrip(" ").startswith((">", "`"))
        and not text[:c].rsplit("\n", 1)[-1].startswith("`")
    ))
    head, tail = text[:cut], open_fence(text[:cut]) + text[cut:]
    chunks = [visible_text(to_mrkdwn(part, final=True)) for part in (head, tail)]
    assert _squash("".join(chunks)) == _squash(_markdown_visible(text))


# --- native streams against the sandbox --------------------------------------------------


@pytest.fixture
def sandbox():
    with SlackEmulator(token=TOKEN) as emu:
        yield emu, SlackClient(TOKEN, "unit", Transport(2.0), api_base=emu.api_base)


def test_a_native_stream_appends_only_the_new_text(sandbox) -> None:
    emu, client = sandbox
    ts = client.send("D0001", "Hel", "text", call=errors.Call(native=True))
    client.edit("D0001", ts, "Hello", "text", call=errors.Call(previous="Hel", native=True))
    client.edit("D0001", ts, "Hello!", "text", final=True,
                call=errors.Call(previous="Hello", native=True))
    assert emu.texts("D0001") == ["Hello!"]
    appended = [c.text_len for c in emu.calls if c.method == "chat.appendStream"]
    assert appended == [2], "only the delta travels"
    assert emu.count("chat.stopStream") == 1 and emu.streaming("D0001") == []


def test_an_expired_stream_goes_on_as_an_update_without_repeating(sandbox) -> None:
    emu, client = sandbox
    ts = client.send("D0002", "one", "text", call=errors.Call(native=True))
    assert emu.expire_streams("D0002") == 1
    client.edit("D0002", ts, "one two", "text", call=errors.Call(previous="one", native=True))
    client.edit("D0002", ts, "one two three", "text", final=True,
                call=errors.Call(previous="one two", native=True))
    [message] = emu.messages("D0002")
    assert [text for _, text in message.history] == ["one", "one two", "one two three"]


def test_a_refused_stream_falls_back_to_post_and_update(sandbox) -> None:
    emu, client = sandbox
    call = errors.Call(native=True, thread="1700000000.000001")
    ts = client.send("C0003", "in a thread", "text", call=call)
    assert emu.count("chat.startStream") == 1 and emu.count("chat.postMessage") == 1
    client.edit("C0003", ts, "in a thread, grown", "text", call=call)
    assert emu.texts("C0003") == ["in a thread, grown"]


def test_text_that_does_not_extend_the_stream_replaces_it(sandbox) -> None:
    emu, client = sandbox
    ts = client.send("D0004", "draft", "text", call=errors.Call(native=True))
    client.edit("D0004", ts, "final", "text", call=errors.Call(previous="draft", native=True))
    assert emu.texts("D0004") == ["final"]
