"""``tokenrelay status`` / ``inspect`` / ``worker`` as a user runs them (subprocesses), against a
stream a real worker is delivering to the Telegram sandbox, and against an unreachable Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


def tokenrelay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenrelay.apps.cli", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=60, env={**os.environ, **env, "COLUMNS": "250"},
    )


def as_json(env: dict[str, str], *args: str) -> dict:
    done = tokenrelay(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_and_inspect_follow_a_live_stream_to_its_result(
    producer, telegram, chat_id, settings_env
) -> None:
    stream = producer.start(channel="telegram", chat_id=chat_id, interval=0.2)
    stream.emit("Looking into it")
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["Looking into it"], timeout=10)
    stream.emit(" ✓ 😀")
    # an edit is visible, so the pass that sent the message has recorded it (one writer)
    assert telegram.wait_for(lambda e: e.texts(chat_id) == ["Looking into it ✓ 😀"], timeout=10)
    [msg] = telegram.messages(chat_id)

    listed = as_json(settings_env, "status")
    [row] = [r for r in listed["streams"] if r["stream_id"] == stream.id]
    assert (row["channel"], row["chat_id"]) == ("telegram", chat_id)
    assert row["chars"] == len("Looking into it ✓ 😀")
    assert row["messages"] == 1
    assert row["state"].startswith("open, ")
    assert row["age_s"] >= 0 and row["lag_s"] >= 0
    assert listed["totals"]["streams"] >= 1 and listed["totals"]["watched"] >= 1

    table = tokenrelay(settings_env, "status")
    assert table.returncode == 0, table.stderr
    [line] = [ln for ln in table.stdout.splitlines() if stream.id in ln]
    assert "telegram" in line and chat_id in line
    assert " live" in table.stdout.splitlines()[-1]

    seen = as_json(settings_env, "inspect", stream.id)
    assert seen["meta"]["status"] == "open" and seen["meta"]["chat_id"] == chat_id
    assert [s[0] for s in seen["state"]["segments"]] == [str(msg.message_id)]
    assert seen["state"]["version"] >= 1 and seen["result"] is None
    assert "budget_waits" in seen["state"]["counts"]
    shown = tokenrelay(settings_env, "inspect", stream.id)
    assert shown.returncode == 0, shown.stderr
    assert str(msg.message_id) in shown.stdout and "sent state per segment" in shown.stdout

    result = stream.stop(timeout=20)
    assert result.all_sent, result
    final = as_json(settings_env, "inspect", stream.id)
    assert final["meta"]["status"] == "closed"
    assert final["result"]["how"] == result.how
    assert final["result"]["message_ids"] == [str(msg.message_id)]
    assert stream.id not in {r["stream_id"] for r in as_json(settings_env, "status")["streams"]}


def test_an_unknown_stream_is_exit_code_1(settings_env) -> None:
    done = tokenrelay(settings_env, "inspect", "no-such-stream-4711")
    assert done.returncode == 1
    assert "no stream 'no-such-stream-4711'" in done.stdout


@pytest.mark.parametrize("args", [("status",), ("inspect", "some-stream")])
def test_unreachable_redis_is_one_line_naming_the_redacted_url(args) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"redis://:pw-4711-secret@127.0.0.1:{port}/0"
    done = tokenrelay({"TOKENRELAY_REDIS_URL": url, "TOKENRELAY_BROKER_URL": url}, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"redis://:***@127.0.0.1:{port}/0" in line and "ConnectionError" in line
    assert "pw-4711-secret" not in done.stderr


def test_worker_is_the_celery_worker_command() -> None:
    done = tokenrelay({}, "worker", "--help")
    assert done.returncode == 0, done.stderr
    assert "celery worker" in done.stdout and "--concurrency" in done.stdout
