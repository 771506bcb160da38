"""Unit and property tests of the splitter (pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.planner.split import char_units, find_cut, fit_end, utf16_units

texts = st.text(alphabet=st.sampled_from("ab \n😀é"), max_size=300)


def test_utf16_counts_astral_characters_twice() -> None:
    assert utf16_units("a😀é") == 4
    assert utf16_units("") == 0


def test_cut_prefers_paragraph_then_line_then_word() -> None:
    para = "x" * 60 + "\n\n" + "y" * 60
    assert find_cut(para, 0, 100) == 62
    line = "x" * 60 + "\n" + "y" * 60
    assert find_cut(line, 0, 100) == 61
    words = "x" * 60 + " " + "y" * 60
    assert find_cut(words, 0, 100) == 61


def test_cut_ignores_a_boundary_that_would_leave_a_tiny_message() -> None:
    text = "xx\n\n" + "y" * 200
    assert find_cut(text, 0, 100) == 100


def test_hard_cut_never_splits_an_emoji() -> None:
    text = "😀" * 100
    cut = find_cut(text, 0, 51)
    assert cut == 25
    assert utf16_units(text[:cut]) <= 51


def test_fit_end_with_a_custom_counter() -> None:
    assert fit_end("abcdef", 1, 3, lambda s: 2 * len(s)) == 2


@settings(max_examples=300)
@given(texts, st.integers(min_value=1, max_value=80), st.sampled_from([utf16_units, char_units]))
def test_cut_always_fits_and_always_progresses(text: str, limit: int, units) -> None:
    cut = find_cut(text, 0, limit, units)
    if units(text) <= limit:
        assert cut == len(text)
    else:
        # progress is guaranteed even when one character alone is over the limit
        assert 0 < cut <= len(text)
        assert units(text[:cut]) <= limit or cut == 1
