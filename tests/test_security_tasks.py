"""Forged task messages, published with kombu straight to a real worker's queue: wrong types,
unknown fields, forged or malformed stream ids, linked tasks, pickle and YAML payloads and
broken envelopes are refused and logged, never executed; the worker goes on serving."""

from __future__ import annotations

import pickle
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Producer, Queue

from producers import StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.helpers import SAMPLE, tokens
from tests.procs import WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.names import STOP
from tokenrelay.redis_server import RedisServer
from tokenrelay.store import Keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class WatchedWorker(WorkerProcess):
    """A WorkerProcess whose output can be awaited line by line."""

    def __init__(self, env: dict[str, str], queue: str, name: str) -> None:
        self.printed = threading.Condition()
        super().__init__(env, queue, name)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.printed:
                self.lines.append(line)
                self.printed.notify_all()
            if " ready." in line:
                self.ready.set()

    def wait_for(self, *needles: str, timeout: float = 10.0) -> str:
        """The output once it holds every needle (AssertionError after ``timeout``)."""
        with self.printed:
            self.printed.wait_for(lambda: all(n in "".join(self.lines) for n in needles), timeout)
            text = "".join(self.lines)
        assert all(n in text for n in needles), f"{needles} not logged:\n{text[-3000:]}"
        return text


@dataclass
class Stack:
    worker: WatchedWorker
    sandbox: TelegramEmulator
    redis: redis.Redis
    url: str
    env: dict[str, str]
    marker_dir: Path
    published: list[str] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return self.env["TOKENRELAY_QUEUE"]

    def publish(
        self,
        body: Any = None,
        *,
        task: str | None = STOP,
        headers: dict[str, Any] | None = None,
        serializer: str = "json",
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> str:
        """A task message as Celery's protocol 2 frames it, with whatever a forger changes."""
        task_id = str(uuid.uuid4())
        frame = {
            "lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None,
            "group": None, "retries": 0, "eta": None, "expires": None,
            "timelimit": [None, None], "argsrepr": "", "kwargsrepr": "",
        }
        exchange = Exchange(self.queue, "direct")
        options: dict[str, Any] = {
            "exchange": exchange, "routing_key": self.queue, "correlation_id": task_id,
            "headers": {**frame, **(headers or {})},
            "declare": [Queue(self.queue, exchange, routing_key=self.queue)],
        }
        with Connection(self.url) as conn:
            producer = Producer(conn)
            if raw is not None:
                producer.publish(raw, content_type=content_type, content_encoding="utf-8",
                                 **options)
            else:
                producer.publish(body, serializer=serializer, **options)
        return task_id


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """A Redis, a sandbox and a subprocess worker of this module's own."""
    with RedisServer() as server, TelegramEmulator(token=TEST_TOKEN) as sandbox:
        env = {
            "TOKENRELAY_BROKER_URL": server.url,
            "TOKENRELAY_REDIS_URL": server.url,
            "TOKENRELAY_QUEUE": f"tokenrelay-forged-{uuid.uuid4().hex[:8]}",
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": TEST_TOKEN,
            "TOKENRELAY_TELEGRAM_API_BASE": sandbox.base_url,
            "TOKENRELAY_FLUSH_INTERVAL": "0.3",
            "TOKENRELAY_TELEGRAM_CHAT_RATE": "5",
        }
        worker = WatchedWorker(env, env["TOKENRELAY_QUEUE"], "forged")
        try:
            assert worker.ready.wait(30), "".join(worker.lines[-30:])
            yield Stack(
                worker, sandbox, redis.Redis.from_url(server.url), server.url, env,
                tmp_path_factory.mktemp("markers"),
            )
        finally:
            worker.stop()


@pytest.fixture
def unharmed(stack: Stack) -> Iterator[Stack]:
    """After the test: the worker is alive and nothing reached the sandbox."""
    calls = len(stack.sandbox.calls)
    yield stack
    assert stack.worker.proc.poll() is None, "the worker survived"
    assert len(stack.sandbox.calls) == calls, "nothing was sent to the chat platform"


#: Celery's protocol 2 "embed": no linked tasks
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
LONG_ID = "x" * 1_000_000


@pytest.mark.parametrize(
    ("args", "kwargs", "shown"),
    [
        pytest.param([123], {}, "not a stream id: 123", id="int"),
        pytest.param([["s1"]], {}, "not a stream id: ['s1']", id="list"),
        pytest.param([{"id": "s1"}], {}, "not a stream id: {'id': 's1'}", id="dict"),
        pytest.param([None], {}, "not a stream id: None", id="none"),
        pytest.param([True], {}, "not a stream id: True", id="bool"),
        pytest.param(["../../etc/passwd"], {}, "not a stream id: '../../etc/passwd'", id="dotdot"),
        pytest.param(["a" * 101], {}, "not a stream id: 'aaaa", id="101-chars"),
        pytest.param([LONG_ID], {}, "not a stream id: 'xxxx", id="1MB"),
        pytest.param(["流式回复"], {}, "not a stream id: '流式回复'", id="unicode"),
        pytest.param(["*"], {}, "not a stream id: '*'", id="star"),
        pytest.param(["s1}:meta"], {}, "not a stream id: 's1}:meta'", id="key-braces"),
        pytest.param(["s1\n[ERROR] forged"], {}, r"not a stream id: 's1\n[ERROR] forged'",
                     id="log-injection"),
        pytest.param(["s1"], {"evil": 1}, "unknown keyword arguments 'evil'", id="extra-kwarg"),
        pytest.param([], {"stream_id": "s1", "x": 2}, "unknown keyword arguments 'x'",
                     id="extra-kwarg-by-name"),
        pytest.param(["s1", "s2"], {}, "takes one stream id, got 2", id="two-args"),
        pytest.param([], {}, "takes one stream id, got 0", id="no-args"),
        pytest.param({"stream_id": "s1"}, {}, "arguments are not a list", id="args-a-dict"),
    ],
)
def test_bad_arguments_are_refused_and_logged(unharmed: Stack, args, kwargs, shown) -> None:
    task_id = unharmed.publish([args, kwargs, EMBED])
    text = unharmed.worker.wait_for(
        f"refused stop task '{task_id}': ", f"stop_stream[{task_id}] ignored"
    )
    [line] = [ln for ln in text.splitlines() if f"refused stop task '{task_id}'" in ln]
    assert shown in line
    assert len(line) < 400, "untrusted input is cut before it reaches the log"
    assert f"stop_stream[{task_id}] raised" not in text, "refused, not crashed"


@pytest.mark.parametrize(
    ("link", "stream_id"),
    # callbacks and chains run after a success (a well-formed id of no stream ends 'gone'),
    # errbacks after a failure (a malformed id)
    [("callbacks", "no-such-stream"), ("chain", "no-such-stream"), ("errbacks", "../x")],
)
def test_linked_tasks_are_refused_and_never_published(
    unharmed: Stack, link: str, stream_id: str
) -> None:
    """A stop message naming tasks to run after it: Celery would publish them; refused."""
    trap = f"trap-{uuid.uuid4().hex[:8]}"
    linked = {
        "task": STOP, "args": ["victim"], "kwargs": {}, "options": {"queue": trap},
        "subtask_type": None, "immutable": True,
    }
    task_id = unharmed.publish([[stream_id], {}, {**EMBED, link: [linked]}])
    unharmed.worker.wait_for(
        f"refused stop task '{task_id}': it links other tasks ({link})",
        f"stop_stream[{task_id}] ignored",
    )
    assert not unharmed.redis.exists(trap), "the linked task was never published"


@pytest.mark.parametrize("extra", ["header", "embed"])
def test_unknown_fields_in_a_well_formed_stop_end_harmlessly(unharmed: Stack, extra) -> None:
    sid = f"forged-{uuid.uuid4().hex}"
    body = [[sid], {}, {**EMBED, "x-exec": "rm -rf /"} if extra == "embed" else EMBED]
    task_id = unharmed.publish(body, headers={"x-exec": "rm -rf /"} if extra == "header" else {})
    unharmed.worker.wait_for(f"stop_stream[{task_id}] succeeded", "'gone'")
    keys = Keys.of(sid)
    assert not unharmed.redis.exists(*vars(keys).values()), "no state for a stream nobody started"


def test_a_forged_stop_of_a_stream_that_does_not_exist_creates_nothing(unharmed: Stack) -> None:
    sid = f"nobody-{uuid.uuid4().hex}"
    task_id = unharmed.publish([[sid], {}, EMBED])
    unharmed.worker.wait_for(f"stop_stream[{task_id}] succeeded", "'gone'")
    assert not unharmed.redis.exists(*vars(Keys.of(sid)).values())


class _Armed:
    """Unpickling this creates ``path``: the payload an attacker would send."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str, str]]:
        return open, (str(self.path), "w")


def test_a_pickle_payload_is_refused_never_unpickled(unharmed: Stack, tmp_path: Path) -> None:
    control = tmp_path / "unpickled-here"
    pickle.loads(pickle.dumps(_Armed(control))).close()
    assert control.exists(), "the payload is armed: unpickling it creates its marker"
    marker = unharmed.marker_dir / f"pwned-{uuid.uuid4().hex}"
    task_id = unharmed.publish([[_Armed(marker)], {}, EMBED], serializer="pickle")
    text = unharmed.worker.wait_for(
        "Refusing to deserialize untrusted content of type pickle", marker.name
    )
    assert f"stop_stream[{task_id}] received" not in text
    assert not marker.exists(), "the payload was never unpickled"


def test_a_yaml_payload_is_refused(unharmed: Stack) -> None:
    marker = unharmed.marker_dir / f"yaml-{uuid.uuid4().hex}"
    raw = f"!!python/object/apply:os.system ['touch {marker}']".encode()
    unharmed.publish(raw=raw, content_type="application/x-yaml")
    unharmed.worker.wait_for("Refusing to deserialize untrusted content", marker.name)
    assert not marker.exists()


def test_a_body_that_is_not_json_is_refused(unharmed: Stack) -> None:
    task_id = unharmed.publish(raw=b'[["s1"], {}, {"callbacks": ', content_type="application/json")
    text = unharmed.worker.wait_for("Can't decode message body", task_id)
    assert f"stop_stream[{task_id}] received" not in text


def test_an_unregistered_task_name_is_refused(unharmed: Stack) -> None:
    name = f"os.system.{uuid.uuid4().hex[:8]}"
    unharmed.publish([["touch /tmp/x"], {}, EMBED], task=name)
    unharmed.worker.wait_for(f"Received unregistered task of type '{name}'",
                             "The message has been ignored and discarded")


def test_a_message_without_a_task_name_is_refused(unharmed: Stack) -> None:
    task_id = unharmed.publish([["s1"], {}, EMBED], task=None)
    unharmed.worker.wait_for("Received unregistered task of type None", task_id)


def test_a_malformed_eta_is_refused(unharmed: Stack) -> None:
    eta = f"not-a-date-{uuid.uuid4().hex[:8]}"
    task_id = unharmed.publish([["s1"], {}, EMBED], headers={"eta": eta})
    text = unharmed.worker.wait_for(f"invalid ETA value '{eta}'", "ignored and discarded")
    assert f"stop_stream[{task_id}] received" not in text


def test_the_worker_still_serves_real_streams(stack: Stack) -> None:
    """Last: after every forged message above, a real stream is delivered whole."""
    producer = StreamProducer(Settings.from_env(stack.env))
    chat = f"7{uuid.uuid4().int % 10**6}"
    try:
        stream = producer.start(channel="telegram", chat_id=chat)
        for tok in tokens(SAMPLE, 16):
            stream.emit(tok)
        result = stream.stop(timeout=30)
    finally:
        producer.close()
    assert result.all_sent, result
    assert stack.sandbox.texts(chat) == [SAMPLE.strip()]
    assert stack.worker.proc.poll() is None
