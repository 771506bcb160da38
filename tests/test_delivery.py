"""Unit and property tests of the delivery planner (pure): split once, never loop, never lose."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.planner.delivery import (
    Limits,
    Segment,
    Window,
    apply,
    delivered_until,
    plan,
    read_from,
    resplit,
    seal,
    unsent,
)
from workers.planner.split import char_units, utf16_units


class Chat:
    """What an ideal chat shows after the planner's ops are performed."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.order: list[str] = []
        self.edited: list[int] = []

    def perform(self, window: Window, p, log_edits: bool = True):
        segs = p.segments
        for op in p.ops:
            text = window.slice(op.start, op.end).strip()
            assert text, "never send or edit to empty text"
            if op.kind == "send":
                mid = str(len(self.messages) + 1)
                self.messages[mid] = text
                self.order.append(mid)
                segs = apply(segs, op, mid)
            else:
                self.messages[op.message_id] = text
                self.edited.append(op.index)
                segs = apply(segs, op)
        return segs

    def texts(self) -> list[str]:
        return [self.messages[m] for m in self.order]


def stream(text: str, steps: list[int], limits: Limits, chat: Chat | None = None):
    chat = chat or Chat()
    segs: tuple[Segment, ...] = ()
    end = 0
    for i, step in enumerate([*steps, len(text)]):
        final = i == len(steps)
        end = len(text) if final else min(len(text), end + step)
        base = read_from(segs) if segs else 0
        window = Window(text[base:end], base)
        # a channel that cannot edit gets whole messages only at boundaries and at the end
        horizon = None if limits.can_edit or final else base
        segs = chat.perform(window, plan(window, segs, limits, horizon))
    return chat, segs


def test_first_tokens_are_sent_then_edited() -> None:
    limits = Limits(100)
    chat, segs = stream("Hello world", [5], limits)
    assert chat.texts() == ["Hello world"]
    assert chat.edited == [0]
    assert unsent(segs, 11) == 0


def test_whitespace_only_is_never_sent() -> None:
    p = plan(Window("  \n "), (), Limits(100))
    assert p.ops == ()


def test_long_text_splits_at_paragraph_and_later_edits_touch_only_the_last_message() -> None:
    text = ("a" * 70 + "\n\n") * 5
    chat, segs = stream(text, [140, 400], Limits(160))
    assert [len(t) for t in chat.texts()] == [142, 142, 70]
    assert "".join(text[s.start : s.cut or len(text)] for s in segs) == text
    assert unsent(segs, len(text)) == 0


def test_a_split_never_takes_back_text_a_message_shows() -> None:
    text = ("a" * 70 + "\n\n") * 5
    chat, segs = stream(text, [10] * 40, Limits(160))
    # the first message showed 160 characters before the text outgrew it: it keeps them
    assert [len(t) for t in chat.texts()] == [160, 160, 38]
    assert "".join(text[s.start : s.cut or len(text)] for s in segs) == text


def test_non_editing_channel_sends_whole_messages_up_to_the_horizon() -> None:
    limits = Limits(100, can_edit=False)
    text = "first part\n\nsecond part"
    p = plan(Window(text), (), limits, horizon=12)
    segs = Chat().perform(Window(text), p)
    assert [(o.kind, o.start, o.end) for o in p.ops] == [("send", 0, 12)]
    p2 = plan(Window(text), segs, limits)
    assert [(o.kind, o.start, o.end) for o in p2.ops] == [("send", 12, len(text))]


def test_replanning_after_everything_is_shown_does_nothing() -> None:
    text = "x " * 300
    _chat, segs = stream(text, [50] * 6, Limits(100))
    again = plan(Window(text), segs, Limits(100))
    assert again.ops == ()
    assert delivered_until(segs, len(text)) == len(text)


def test_a_deleted_window_base_is_refused() -> None:
    try:
        Window("abc", 10).slice(5, 12)
    except ValueError as exc:
        assert "before the window" in str(exc)
    else:
        raise AssertionError("slice before the window must fail")


chunks = st.lists(st.integers(min_value=1, max_value=40), max_size=30)
alphabet = st.sampled_from(["a", "b", " ", "\n", "\n\n", "😀", "é", "word "])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(alphabet, min_size=0, max_size=150).map("".join),
    chunks,
    st.integers(min_value=8, max_value=60),
    st.booleans(),
)
def test_streaming_never_loses_never_overflows_never_loops(text, steps, limit, can_edit) -> None:
    limits = Limits(limit, utf16_units, can_edit)
    chat, segs = stream(text, steps, limits)
    # the messages, in order, carry the whole text (up to whitespace at the cuts)
    assert "".join(chat.texts()).replace(" ", "").replace("\n", "") == text.replace(
        " ", ""
    ).replace("\n", "")
    for shown in chat.texts():
        assert utf16_units(shown) <= limit
    # closed segments tile the text without gaps or overlaps
    for a, b in itertools.pairwise(segs):
        assert a.cut == b.start
    assert unsent(segs, len(text)) == 0
    # number of messages is bounded: no split-on-every-edit loop
    assert len(segs) <= 2 * utf16_units(text) // limit + 2


def test_seal_adds_a_final_edit_only_where_the_finished_rendering_differs() -> None:
    text = "done *"
    shown = (Segment("1", 0, None, len(text)),)
    differs = lambda seg, t: t.endswith("*")  # noqa: E731
    ops = seal(Window(text), shown, (), differs)
    assert [(o.kind, o.index, o.end) for o in ops] == [("edit", 0, len(text))]
    assert seal(Window(text), (Segment("1", 0, None, len(text), sealed=True),), (), differs) == ()
    assert seal(Window("done"), (Segment("1", 0, None, 4),), (), differs) == ()


def test_resplit_cuts_a_refused_closed_segment_again_keeping_its_message() -> None:
    text = "aaaa bbbb cccc dddd eeee ffff"
    segs = (Segment("1", 0, 20, 20), Segment(None, 20, None, 20))
    recut = resplit(Window(text), segs, 0, Limits(10, char_units))
    assert recut is not None
    assert [(s.message_id, s.start, s.cut) for s in recut] == [
        ("1", 0, 10), (None, 10, 20), (None, 20, None)
    ]
    # once a later message exists the order could no longer be kept
    assert resplit(Window(text), (segs[0], Segment("2", 20, None, 29)), 0, Limits(10)) is None
