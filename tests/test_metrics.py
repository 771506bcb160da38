"""A subprocess worker's /metrics, scraped over HTTP, agrees with the sandbox's ledger."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from producers import StreamProducer
from tests.helpers import SAMPLE, emit_paced
from tests.procs import WorkerProcess
from tokenrelay.config import Settings

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: a sample: (metric sample name, its labels as sorted pairs)
Key = tuple[str, tuple[tuple[str, str], ...]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        return reply.read().decode()


def scrape(port: int) -> dict[Key, float]:
    text = fetch(port)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[Key, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


@pytest.fixture(params=["one process", "multiprocess"])
def metered(request, settings_env, tmp_path):
    """A subprocess worker on a queue of its own, serving /metrics on a free port (values in
    this process, or in prometheus-client's multiprocess files), with task events on; its chat
    budget (50/s) is far above the sandbox's (1/s, burst 3), so fast edits meet real 429s."""
    port = free_port()
    env = {
        **settings_env,
        "TOKENRELAY_QUEUE": f"tokenrelay-metrics-{uuid.uuid4().hex[:8]}",
        "TOKENRELAY_METRICS_PORT": str(port),
        "TOKENRELAY_TELEGRAM_CHAT_RATE": "50",
        "TOKENRELAY_TASK_EVENTS": "1",
    }
    if request.param == "multiprocess":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    producer = StreamProducer(Settings.from_env(env))
    worker = WorkerProcess(env, env["TOKENRELAY_QUEUE"], "metrics")
    try:
        assert worker.ready.wait(30), "".join(worker.lines[-20:])
        assert any(".> task events: ON" in line for line in worker.lines), (
            "TOKENRELAY_TASK_EVENTS=1 must turn task events on"
        )
        if request.param == "multiprocess":
            assert list(tmp_path.glob("*.db")), "values must live in the multiprocess files"
        yield producer, port
    finally:
        producer.close()
        worker.stop()


def test_counters_match_what_the_sandbox_ledger_shows(metered, telegram) -> None:
    producer, port = metered
    base = 10**9 + uuid.uuid4().int % 10**8
    chats = [str(base + i) for i in range(3)]
    texts = [SAMPLE * 30, SAMPLE, SAMPLE[:60]]  # the first needs three messages
    streams = [producer.start(channel="telegram", chat_id=c, interval=0.05) for c in chats]

    live = scrape(port)
    assert total(live, "tokenrelay_redis_up") == 1
    assert total(live, "tokenrelay_scheduled_streams", schedule="watch") == len(streams)

    for stream, text in zip(streams, texts, strict=True):
        emit_paced(stream, text, per_second=2000, size=12)
    results = [s.stop(timeout=60) for s in streams]
    assert all(r.all_sent for r in results), results
    samples = scrape(port)

    calls = [c for c in telegram.calls if c.chat_id in chats]
    ledger = Counter((c.method, c.ok) for c in calls)
    messages = sum(len(telegram.messages(c)) for c in chats)
    assert messages == sum(len(r.message_ids) for r in results) >= 5
    ops = {
        (kind, outcome): total(samples, "tokenrelay_ops_total", channel="telegram", kind=kind,
                               outcome=outcome)
        for kind in ("send", "edit") for outcome in ("ok", "not_modified", "rate_limited")
    }
    assert ops["send", "ok"] == messages == ledger["sendMessage", True]
    assert ops["edit", "ok"] == ledger["editMessageText", True] > 0
    assert ops["edit", "not_modified"] == sum(
        1 for c in calls if c.error and "not modified" in c.error
    )
    limited = sum(1 for c in calls if c.status == 429)
    assert limited > 0, "the sandbox's chat limit must have answered 429 at least once"
    assert total(samples, "tokenrelay_rate_limited_total", channel="telegram") == limited
    assert ops["send", "rate_limited"] + ops["edit", "rate_limited"] == limited
    assert limited == sum(r.rate_limited for r in results)
    assert total(samples, "tokenrelay_ops_total") == len(calls), "every call counted once"

    shown = ops["send", "ok"] + ops["edit", "ok"] + ops["edit", "not_modified"]
    assert total(samples, "tokenrelay_update_lag_seconds_count") == shown
    assert total(samples, "tokenrelay_call_seconds_count") == len(calls)
    assert total(samples, "tokenrelay_stop_to_final_seconds_count") == len(streams)
    hows = Counter(r.how for r in results)
    for how, n in hows.items():
        assert total(samples, "tokenrelay_finished_streams_total", how=how) == n
    assert total(samples, "tokenrelay_finished_streams_total") == len(streams)
    assert total(samples, "tokenrelay_unsent_chars_total") == 0
    assert total(samples, "tokenrelay_passes_total", kind="final") >= len(streams)
    assert total(samples, "tokenrelay_passes_total", kind="interim") > 0
    assert total(samples, "tokenrelay_budget_waits_total") == sum(r.budget_waits for r in results)
    assert total(samples, "tokenrelay_retries_total") == sum(r.retries for r in results) == 0
    assert total(samples, "tokenrelay_ambiguous_sends_total") == 0
    assert total(samples, "tokenrelay_lease_takeovers_total") == 0
    # a finished stream leaves the watchdog's schedule at once
    assert total(samples, "tokenrelay_scheduled_streams", schedule="watch") == 0


def test_the_dashboard_uses_only_metrics_a_worker_serves(redis_url) -> None:
    from prometheus_client.metrics import MetricWrapperBase

    from tokenrelay.store import Store
    from workers import metrics

    served = {f.name for f in metrics.SchedulesCollector(Store.from_url(redis_url)).collect()}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            served.update(f.name for f in value.describe())
    dashboard = (ROOT / "deploy" / "grafana-dashboard.json").read_text()
    assert json.loads(dashboard)["panels"]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", n)
            for n in re.findall(r"tokenrelay_[a-z_]+", dashboard)}
    assert len(used) >= 15 and used <= served, f"unknown metrics: {used - served}"


def test_each_channel_error_counts_as_its_own_outcome() -> None:
    from workers.channels import errors as errs
    from workers.lease import LeaseLost
    from workers.metrics import outcome_of

    assert outcome_of(errs.RateLimited(1.0)) == "rate_limited"
    assert outcome_of(errs.Ambiguous()) == "ambiguous"
    assert outcome_of(errs.CallExpired()) == "expired"
    assert outcome_of(errs.TransientFailure()) == "transient"
    assert outcome_of(errs.NotModified()) == "not_modified"
    assert outcome_of(errs.PermanentFailure()) == "failed"
    assert outcome_of(errs.ChannelError()) == "error"
    assert outcome_of(LeaseLost("gone")) == "aborted"
