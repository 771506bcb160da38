"""workers.channels.telegram_markdown: Markdown -> Telegram HTML, healed mid-stream."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.channels.telegram_markdown import BULLET, to_telegram_html, visible_text

# --- a strict validator for what Telegram's HTML parser accepts -------------------------

_ALLOWED_TAGS = {"b", "i", "s", "code", "pre", "a", "blockquote"}
_TOKEN = re.compile(
    r'<(/?)([a-z]+)((?: [a-z]+="[^"<>]*")*)>'
    r"|&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);"
    r"|[<>&]"
)
_ATTR_TEXT = re.compile(r'(?:[^&"<>]|&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);)*')


def assert_telegram_html(html: str) -> None:
    """Allowed tags only, balanced and properly nested, & only as an entity, no stray < >.

    Nesting is held to what Telegram documents: pre and blockquote only at the top level,
    code holds text only, pre holds text or exactly one <code class="language-…">, no a in a.
    """
    stack: list[str] = []
    pre_open_end = -1  # where the innermost <pre> tag ended
    code_in_pre_end = -1  # where a </code> inside pre ended
    for match in _TOKEN.finditer(html):
        token = match.group(0)
        assert token not in ("<", ">", "&"), f"stray {token!r} at {match.start()} in {html!r}"
        if token.startswith("&"):
            continue
        closing, tag, attrs = match.groups()
        assert tag in _ALLOWED_TAGS, html
        parent = stack[-1] if stack else None
        if closing:
            assert not attrs and parent == tag, f"misnested </{tag}> in {html!r}"
            stack.pop()
            if tag == "code" and stack and stack[-1] == "pre":
                code_in_pre_end = match.end()
            if tag == "pre" and html[pre_open_end : pre_open_end + 5] == "<code":
                assert code_in_pre_end == match.start(), f"text after </code> in pre: {html!r}"
            continue
        assert parent != "code", f"tag inside code: {html!r}"
        if parent == "pre":
            assert tag == "code" and match.start() == pre_open_end, f"pre content: {html!r}"
        if tag in ("pre", "blockquote"):
            assert parent is None, f"nested {tag}: {html!r}"
        if tag == "a":
            assert "a" not in stack, html
            assert re.fullmatch(r' href="[^"]+"', attrs), html
            assert _ATTR_TEXT.fullmatch(attrs[7:-1]), html
        elif tag == "code" and parent == "pre":
            assert attrs == "" or re.fullmatch(r' class="language-[A-Za-z0-9_+#.-]+"', attrs)
        else:
            assert attrs == "", html
        if tag == "pre":
            pre_open_end = match.end()
        stack.append(tag)
    assert not stack, f"unclosed {stack} in {html!r}"


@pytest.mark.parametrize(
    "html",
    [
        "<b>x",
        "<b><i>x</b></i>",
        "<u>x</u>",
        "a < b",
        "a & b",
        "&nbsp;",
        "<pre><b>x</b></pre>",
        "<b><pre>x</pre></b>",
        '<a href="x"><a href="y">z</a></a>',
        "<code><i>x</i></code>",
        '<b class="x">y</b>',
        "<pre><code>x</code>y</pre>",
        "x>",
    ],
)
def test_validator_rejects_bad_html(html: str) -> None:
    with pytest.raises(AssertionError):
        assert_telegram_html(html)


def units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --- examples ---------------------------------------------------------------------------

CONSTRUCTS = [
    ("**bold**", "<b>bold</b>"),
    ("__bold__", "<b>bold</b>"),
    ("*italic*", "<i>italic</i>"),
    ("_italic_", "<i>italic</i>"),
    ("a *b* c", "a <i>b</i> c"),
    ("(*aside*)", "(<i>aside</i>)"),
    ("snake_case_words", "snake_case_words"),
    ("2*3*4 and 5 * 6 * 7", "2*3*4 and 5 * 6 * 7"),
    ("**粗体**中文", "<b>粗体</b>中文"),
    ("***both***", "<i><b>both</b></i>"),
    ("**bold *and italic* text**", "<b>bold <i>and italic</i> text</b>"),
    ("**a **b** c**", "<b>a b c</b>"),
    ("~~strike~~", "<s>strike</s>"),
    ("~100 ms", "~100 ms"),
    ("`x < y && z`", "<code>x &lt; y &amp;&amp; z</code>"),
    ("`**not bold**`", "<code>**not bold**</code>"),
    ("``a ` b``", "<code>a ` b</code>"),
    ("```py\nprint(1 < 2)\n```", '<pre><code class="language-py">print(1 &lt; 2)</code></pre>'),
    ("```\n**raw**\n```", "<pre>**raw**</pre>"),
    ("~~~sh\nls\n~~~", '<pre><code class="language-sh">ls</code></pre>'),
    ("a\n```\nx\n```\nb", "a\n<pre>x</pre>\nb"),
    ("```x```", "<code>x</code>"),
    ("[docs](https://example.org)", '<a href="https://example.org">docs</a>'),
    ('[q](https://x.org/?a=1&b="2")', '<a href="https://x.org/?a=1&amp;b=&quot;2&quot;">q</a>'),
    ("[**b**](tg://user?id=1)", '<a href="tg://user?id=1"><b>b</b></a>'),
    ("[mail](mailto:a@b.c)", '<a href="mailto:a@b.c">mail</a>'),
    (
        "[w](https://en.wikipedia.org/wiki/F_(x))",
        '<a href="https://en.wikipedia.org/wiki/F_(x)">w</a>',
    ),
    ("[](https://x.org)", '<a href="https://x.org">https://x.org</a>'),
    ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
    ("[x](/relative)", "[x](/relative)"),
    ("[x](https://a b)", "[x](https://a b)"),
    ("[1] and [2]", "[1] and [2]"),
    ("# Title", "<b>Title</b>"),
    ("###### **Deep** _one_", "<b>Deep <i>one</i></b>"),
    ("#hashtag", "#hashtag"),
    ("####### seven", "####### seven"),
    ("> a\n> **b**\nc", "<blockquote>a\n<b>b</b></blockquote>\nc"),
    ("> a\n\n> b", "<blockquote>a</blockquote>\n\n<blockquote>b</blockquote>"),
    ("- one\n* two\n  + three", f"{BULLET} one\n{BULLET} two\n  {BULLET} three"),
    ("1. first\n2. second", "1. first\n2. second"),
    ("a\n---\nb\n***\n* * *", "a\n---\nb\n***\n* * *"),
    ("x <b> & y", "x &lt;b&gt; &amp; y"),
    ("\\*not italic\\* C:\\dir", "*not italic* C:\\dir"),
    ("**unclosed\nnext", "**unclosed\nnext"),
    ("`unclosed\nnext", "`unclosed\nnext"),
    ("**bold**text\n", "**bold**text\n"),
    ("", ""),
]

HEALING = [
    ("**bol", "<b>bol</b>"),
    ("__bol", "<b>bol</b>"),
    ("*ital", "<i>ital</i>"),
    ("_ital", "<i>ital</i>"),
    ("~~stri", "<s>stri</s>"),
    ("`cod", "<code>cod</code>"),
    ("**bold *and ital", "<b>bold <i>and ital</i></b>"),
    ("**bold `co", "<b>bold <code>co</code></b>"),
    ("***bi", "<b><i>bi</i></b>"),
    ("**", ""),
    ("text **", "text "),
    ("text *", "text "),
    ("text ~", "text "),
    ("`", ""),
    ("``", ""),
    ("**bold*", "<b>bold</b>"),
    ("~~s~", "<s>s</s>"),
    ("trailing \\", "trailing "),
    ("```", ""),
    ("```py", ""),
    ("a\n```py", "a\n"),
    ("```py\n", ""),
    ("```py\nx = 1", '<pre><code class="language-py">x = 1</code></pre>'),
    ("```py\nx = 1\n", '<pre><code class="language-py">x = 1</code></pre>'),
    ("```py\nx = 1\n``", '<pre><code class="language-py">x = 1</code></pre>'),
    ("```py\nx = 1\n```", '<pre><code class="language-py">x = 1</code></pre>'),
    ("[text", "[text"),
    ("[text]", "[text]"),
    ("[text](", "text"),
    ("[text](ht", "text"),
    ("[**te** xt](https://exa", "<b>te</b> xt"),
    ("[text](foo", "[text](foo"),
    ("#", ""),
    ("## ", ""),
    ("## Ti", "<b>Ti</b>"),
    ("-", ""),
    ("  +", "  "),
    ("- ", f"{BULLET} "),
    (">", ""),
    ("> quo", "<blockquote>quo</blockquote>"),
    ("> **quo", "<blockquote><b>quo</b></blockquote>"),
    ("***", ""),
    ("2*", "2*"),
]


@pytest.mark.parametrize(("markdown", "html"), CONSTRUCTS + HEALING)
def test_examples(markdown: str, html: str) -> None:
    assert to_telegram_html(markdown) == html
    assert_telegram_html(html)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ('<b>a &lt; b</b> &amp; <a href="https://x?a=1&amp;b">c</a>', "a < b & c"),
        ("&quot;q&quot; &#65;&#x42;&#X43;", '"q" ABC'),
        ("&amp;lt; &nbsp; &#99999999999;", "&lt; &nbsp; &#99999999999;"),
        ('<pre><code class="language-py">x</code></pre>', "x"),
    ],
)
def test_visible_text(html: str, text: str) -> None:
    assert visible_text(html) == text


# --- properties -------------------------------------------------------------------------

#: characters that may start markup somewhere; text without them is plain
MARKUP = set("\\`*_~[]()#>-+")
_EMPHASIS = ["*", "**", "_", "__", "~", "~~"]
_CODE_AND_LINKS = ["`", "```", "[", "]", "(", ")", "](", "https://x.y/", "ht", "javascript:"]
_LINE_STARTS = ["#", "# ", ">", "> ", "-", "- ", "+ ", "1. ", "---", "\n"]
_TEXT = ["\\", " ", "  ", "a", "bc", "2", "😀", "中", "<", "&", '"', "&amp;", "é"]
MARKDOWNISH = st.lists(
    st.sampled_from([*_EMPHASIS, *_CODE_AND_LINKS, *_LINE_STARTS, *_TEXT]),
    max_size=40,
).map("".join)
PLAIN = st.text(st.characters(blacklist_characters=sorted(MARKUP), blacklist_categories=["Cs"]))
ANY_TEXT = st.one_of(st.text(max_size=200), MARKDOWNISH, st.text("*_`~[]()#>-\n ab", max_size=60))

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(ANY_TEXT)
def test_output_is_valid_telegram_html(markdown: str) -> None:
    assert_telegram_html(to_telegram_html(markdown))


@FAST
@given(ANY_TEXT)
def test_visible_text_never_longer_than_input(markdown: str) -> None:
    assert units(visible_text(to_telegram_html(markdown))) <= units(markdown)


@FAST
@given(PLAIN)
def test_plain_text_renders_to_itself(text: str) -> None:
    html = to_telegram_html(text)
    assert html == text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert visible_text(html) == text


@FAST
@given(PLAIN, st.data())
def test_plain_prefix_is_visible_prefix(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    whole = visible_text(to_telegram_html(text))
    assert whole.startswith(visible_text(to_telegram_html(text[:cut])))


_WORD = st.text("abcxyzé中😀", min_size=1, max_size=5)
_SEGMENT = st.one_of(
    _WORD,
    _WORD.map(lambda w: f"**{w}**"),
    _WORD.map(lambda w: f"*{w}*"),
    _WORD.map(lambda w: f"_{w}_"),
    _WORD.map(lambda w: f"~~{w}~~"),
    _WORD.map(lambda w: f"`{w}`"),
    _WORD.map(lambda w: f"**{w}**,"),
)
_LINE = st.lists(_SEGMENT, min_size=1, max_size=5).map(" ".join)
_BLOCK = st.one_of(
    _LINE,
    _LINE.map(lambda line: "# " + line),
    _LINE.map(lambda line: "- " + line),
    _LINE.map(lambda line: "> " + line),
    st.lists(st.text("ab =*_(){}<&", max_size=8), max_size=3).map(
        lambda body: "```py\n" + "\n".join(body) + "\n```"
    ),
)
WELL_FORMED = st.lists(_BLOCK, min_size=1, max_size=5).map("\n".join)


@settings(max_examples=80, deadline=None)
@given(WELL_FORMED)
def test_streaming_well_formed_markdown_never_flickers(markdown: str) -> None:
    """Every prefix of closed-markup Markdown shows a prefix of what the whole shows."""
    whole = visible_text(to_telegram_html(markdown))
    for cut in range(len(markdown) + 1):
        html = to_telegram_html(markdown[:cut])
        assert whole.startswith(visible_text(html)), (markdown[:cut], html)


# --- speed ------------------------------------------------------------------------------

_REPLY = (
    "## Plan\nHere is **the plan** with *some* `code` and a [link](https://example.org/x).\n"
    "- item one_with_snake and 2*3*4\n> quoted ~~text~~\n```py\nprint('<hi>')\n```\n"
)


@pytest.mark.parametrize(
    "markdown",
    [
        (_REPLY * 1000)[:100_000],
        "*a _b " * 17_000,
        "[a](" * 25_000,
        "[" * 50_000 + "]" * 50_000,
        "`" + "` `` " * 20_000,
        "**" * 50_000,
        "```\n" + "x\n" * 50_000,
        "> " + "a" * 100_000,
    ],
    ids=["reply", "openers", "links", "brackets", "backticks", "stars", "fence", "quote"],
)
def test_100kb_renders_fast(markdown: str) -> None:
    started = time.perf_counter()
    html = to_telegram_html(markdown)
    # linear, not quadratic: a generous bound (performance is measured in bench/, this only
    # catches a blow-up, also on a loaded CI machine)
    assert time.perf_counter() - started < 5.0
    assert_telegram_html(html)


def test_open_fence_names_the_block_a_cut_text_ends_inside() -> None:
    from workers.channels.telegram_markdown import open_fence

    assert open_fence("intro\n```python\nx = 1\n") == "```python\n"
    assert open_fence("intro\n~~~\nx\n") == "~~~\n"
    assert open_fence("```js\nx\n```\nafter\n") == ""
    assert open_fence("no code at all") == ""
    assert open_fence("```a\n```\n```b\ny\n") == "```b\n"


@FAST
@given(ANY_TEXT)
def test_final_rendering_is_valid_and_never_longer(markdown: str) -> None:
    html = to_telegram_html(markdown, final=True)
    assert_telegram_html(html)
    assert units(visible_text(html)) <= units(markdown)


@pytest.mark.parametrize(
    ("markdown", "growing", "final"),
    [
        ("Total: 5 *", "Total: 5 ", "Total: 5 *"),
        ("x **b", "x <b>b</b>", "x **b"),
        ("see [a](http", "see a", "see [a](http"),
        ("**done**", "<b>done</b>", "<b>done</b>"),
    ],
)
def test_final_text_holds_nothing_back(markdown: str, growing: str, final: str) -> None:
    assert to_telegram_html(markdown) == growing
    assert to_telegram_html(markdown, final=True) == final
