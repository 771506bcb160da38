"""The sandbox's live chat page (sandbox/page.py) in a real headless Chromium.

A reply streams through the real worker into the Telegram sandbox while the page is open; the
page must show a growing message before the stream stops (over Server-Sent Events: it was
loaded while the chat was empty), then exactly what the ledger holds at the end.
Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them); skipped otherwise.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.page import chat_page_url
from tests.helpers import emit_paced, squash

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: about 7,000 characters: two Telegram messages
REPLY = "\n\n".join(
    f"Step {i}: the page shows each send and edit of this chat as it lands in the sandbox. "
    + "Nothing polls; the ledger's own change notification drives the event stream. " * 2
    for i in range(1, 31)
)
#: emitted before the page must show something (the stream is still open then)
HEAD = REPLY[:400]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no headless browser: apt-get install chromium chromium-driver "
                    "(.ci/run installs them when /usr/bin/chromium is absent)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _bubbles(driver) -> list[dict[str, str]]:
    """What the page shows: each bubble's text and its meta line ("edited" or "")."""
    return driver.execute_script(
        "return [...document.querySelectorAll('.bubble')].map(b => ({"
        "text: b.querySelector('.text').textContent, meta: b.querySelector('.meta').textContent,"
        "id: b.dataset.messageId}))"
    )


def test_page_follows_a_live_stream(browser, producer, telegram, chat_id) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, poll_frequency=0.05)
    browser.get(chat_page_url(telegram, chat_id))
    wait.until(lambda d: d.find_element(By.ID, "status").text == "live")
    assert _bubbles(browser) == []
    assert browser.find_element(By.ID, "count").text == "0 messages"

    stream = producer.start(channel="telegram", chat_id=chat_id)
    emit_paced(stream, HEAD)
    # a live update: the page shows the reply's beginning while the stream is still open
    live = wait.until(lambda d: _bubbles(d) or None)
    assert not stream.closed
    assert len(live) == 1 and squash(HEAD).startswith(squash(live[0]["text"]))

    emit_paced(stream, REPLY[len(HEAD):], per_second=4000)
    result = stream.stop(timeout=60)
    assert result.all_sent, result

    shown = telegram.texts(chat_id)
    assert len(shown) == len(result.message_ids) == 2
    final = wait.until(lambda d: [b["text"] for b in _bubbles(d)] == shown and _bubbles(d))
    assert squash("".join(b["text"] for b in final)) == squash(REPLY)
    assert [b["id"] for b in final] == result.message_ids
    assert len(squash(live[0]["text"])) < len(squash(final[0]["text"])), "no growth seen"
    assert final[0]["meta"] == "edited", "the first message grew by edits"
    assert browser.find_element(By.ID, "count").text == "2 messages"
    log = browser.find_element(By.ID, "log").text
    assert "sendMessage 200" in log and "editMessageText 200" in log
    assert not [c for c in telegram.calls if c.method.startswith("/")], "the page hit the API"


def test_state_and_events_without_a_browser(producer, telegram, chat_id) -> None:
    """/state is the ledger's view of the chat; /events opens with the same state."""
    with producer.stream(channel="telegram", chat_id=chat_id) as stream:
        stream.emit("Hello from the page test.")
    url = chat_page_url(telegram, chat_id)
    assert url is not None
    with urllib.request.urlopen(f"{url}/state", timeout=10) as answer:
        state = json.load(answer)
    assert [m["text"] for m in state["messages"]] == telegram.texts(chat_id)
    assert state["log"] and state["log"][0]["method"] == "sendMessage"
    with urllib.request.urlopen(f"{url}/events", timeout=10) as events:
        assert events.headers["Content-Type"].startswith("text/event-stream")
        first = events.readline().decode()
    assert first.startswith("data: ")
    assert json.loads(first[len("data: "):])["messages"] == state["messages"]
    with urllib.request.urlopen(telegram.base_url + "/chats", timeout=10) as index:
        assert f'href="/chats/{chat_id}"' in index.read().decode()
